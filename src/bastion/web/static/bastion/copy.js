// Copy-to-clipboard for elements marked data-copy="<id of the element holding the text>".
// Static file because the Content-Security-Policy forbids inline script.
(function () {
  "use strict";

  // The page's language, from base.html's <meta name="script-text">; English without one.
  var block = document.querySelector('meta[name="script-text"]');
  var said = block ? JSON.parse(block.content) : {};
  var copied = said.copied || "Copied.";
  var selected = said.copySelected || "Selected: press Ctrl+C to copy.";

  function announce(button, text) {
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    if (status) { status.textContent = text; }
  }

  function selectContents(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;  // without script the value is still selectable by hand
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) { return; }
      // A list (recovery codes) is copied one item a line, as it reads.
      var items = source.querySelectorAll("li");
      var text = items.length ? Array.prototype.map.call(items, function (item) {
        return item.textContent.trim();
      }).join("\n") : source.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () {
          announce(button, copied);
        }, function () {
          selectContents(source);
          announce(button, selected);
        });
      } else {
        selectContents(source);
        announce(button, selected);
      }
    });
  });
})();
