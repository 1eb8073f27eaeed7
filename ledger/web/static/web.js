// The only script of the web view: a filter chosen from a list applies at once.
// Every page works without it (the forms have their buttons).
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
