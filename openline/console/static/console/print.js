// The printable conversation's Print button (a file, not an onclick: the console's
// Content-Security-Policy runs no inline script).
document.addEventListener("click", function (e) {
  if (e.target.closest && e.target.closest("[data-print]")) window.print();
});
