// berth web interface: progressive enhancement only; every flow works without it.
// Copy buttons put their data-copy text on the clipboard.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var text = button.getAttribute("data-copy") || "";
  var done = function (label) {
    var old = button.textContent;
    button.textContent = label;
    setTimeout(function () { button.textContent = old; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, function () { done("Select and copy"); });
  } else {
    // Plain HTTP: select the command so the user can copy it.
    var code = button.parentElement && button.parentElement.querySelector("code");
    if (code) {
      var range = document.createRange();
      range.selectNodeContents(code);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try { document.execCommand("copy"); done("Copied"); } catch (e) { done("Selected"); }
    }
  }
});
