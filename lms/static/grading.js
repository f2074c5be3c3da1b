/* Keyboard navigation when grading question by question
   (lms/templates/instructor/grade_question.html):
     Alt+ArrowRight / Alt+ArrowLeft  next / previous learner (anywhere, even in a field);
     Ctrl+Enter (or Cmd+Enter)       "Save and next", only from inside the grading form.
   No other key is taken over, so typing in the score and comment is never disturbed. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-grading-form]");
  var dirty = false;
  if (form) {
    form.addEventListener("input", function () {
      dirty = true;
    });
    form.addEventListener("submit", function () {
      dirty = false;
    });
  }

  function go(rel) {
    var link = document.querySelector('a[data-nav="' + rel + '"]');
    if (!link) {
      return false;
    }
    if (dirty && form && !window.confirm(form.getAttribute("data-confirm-leave") || "")) {
      return true;
    }
    window.location.assign(link.href);
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) {
      return;
    }
    var arrow = event.key === "ArrowRight" || event.key === "ArrowLeft";
    if (arrow && event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      if (go(event.key === "ArrowRight" ? "next" : "prev")) {
        event.preventDefault();
      }
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey &&
        form && form.contains(event.target)) {
      event.preventDefault();
      if (form.requestSubmit) {
        form.requestSubmit();
      } else {
        form.submit();
      }
    }
  });
})();
