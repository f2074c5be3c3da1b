/* The extension's learner field on the deadlines page (lms/templates/instructor/deadlines.html):
   a search field whose <datalist> the server fills with the whole cohort when it is small. For
   a larger cohort the list comes empty and is filled here, as one types, with the few learners
   the server finds (learners.json). Without this script the field still works: the server
   finds the learner from part of a name or an email. */
(function () {
  "use strict";
  var input = document.querySelector("input[data-suggest-url][list]");
  var list = input ? document.getElementById(input.getAttribute("list")) : null;
  if (!list || list.options.length > 0 || !window.fetch) {
    return;
  }
  var url = input.getAttribute("data-suggest-url");
  var timer = null;
  var asked = "";

  function fill(learners) {
    list.textContent = "";
    learners.forEach(function (learner) {
      var option = document.createElement("option");
      option.value = learner.email;
      option.textContent = learner.name;
      list.appendChild(option);
    });
  }

  function ask() {
    var text = input.value.trim();
    if (text.length < 2 || text === asked) {
      return;
    }
    asked = text;
    fetch(url + "?q=" + encodeURIComponent(text), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        return response.ok ? response.json() : { learners: [] };
      })
      .then(function (answer) {
        if (input.value.trim() === text) {
          fill(answer.learners || []);
        }
      })
      .catch(function () {
        /* No suggestions; the server still finds the learner from the text sent. */
      });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 200);
  });
})();
