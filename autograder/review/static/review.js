// Keyboard shortcuts of the review app (no framework; served by the app itself, CSP 'self').
// j / k: next / previous submission card; 1-9: toggle that rubric item on the current card;
// x: select the current card for a bulk action; p: points field; c: comment field.
(function () {
  "use strict";
  var cards = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-card]")); };
  var current = -1;
  var KEY = "review-current:" + location.pathname + location.search;

  function focusCard(index) {
    var list = cards();
    if (!list.length) { return; }
    index = Math.max(0, Math.min(list.length - 1, index));
    if (current >= 0 && list[current]) { list[current].classList.remove("current"); }
    current = index;
    var card = list[current];
    var details = card.closest("details");
    if (details && !details.open) { details.open = true; }
    card.classList.add("current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "start" });
    try { sessionStorage.setItem(KEY, card.id); } catch (e) { /* private mode */ }
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
      target.tagName === "SELECT" || target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var list = cards();
    var card = list[current];
    if (event.key === "j" || event.key === "ArrowDown" && event.shiftKey) { focusCard(current + 1); event.preventDefault(); return; }
    if (event.key === "k" || event.key === "ArrowUp" && event.shiftKey) { focusCard(current - 1); event.preventDefault(); return; }
    if (!card) { return; }
    if (/^[1-9]$/.test(event.key)) {
      var button = card.querySelector('button[data-key="' + event.key + '"]');
      if (button) { button.click(); event.preventDefault(); }
    } else if (event.key === "x") {
      var box = card.querySelector("[data-pick]");
      if (box) { box.checked = !box.checked; event.preventDefault(); }
    } else if (event.key === "p") {
      var points = card.querySelector("[data-points]");
      if (points) { points.focus(); points.select(); event.preventDefault(); }
    } else if (event.key === "c") {
      var comment = card.querySelector("[data-comment]");
      if (comment) { comment.focus(); event.preventDefault(); }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-select-group]");
    if (button) {
      var group = button.closest("[data-group]");
      var boxes = group.querySelectorAll("[data-pick]");
      var all = Array.prototype.every.call(boxes, function (b) { return b.checked; });
      Array.prototype.forEach.call(boxes, function (b) { b.checked = !all; });
      return;
    }
    var card = event.target.closest("[data-card]");
    if (card) {
      var index = cards().indexOf(card);
      if (index !== current) {
        if (current >= 0 && cards()[current]) { cards()[current].classList.remove("current"); }
        current = index;
        card.classList.add("current");
        try { sessionStorage.setItem(KEY, card.id); } catch (e) { /* private mode */ }
      }
    }
  });

  // After a change the page reloads: come back to the card worked on.
  document.addEventListener("DOMContentLoaded", function () {
    var id = location.hash ? location.hash.slice(1) : null;
    if (!id) { try { id = sessionStorage.getItem(KEY); } catch (e) { id = null; } }
    var list = cards();
    for (var i = 0; i < list.length; i++) {
      if (list[i].id === id) { focusCard(i); return; }
    }
  });
})();
