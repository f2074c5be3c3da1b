/* Live progress of an autograding batch (lms/templates/instructor/batch.html), on
   live-progress.js: the bar, the figures, the rate and the time left while it runs. */
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;

  function number(value, digits) {
    return Number(value).toLocaleString(lang, { maximumFractionDigits: digits || 0 });
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined) {
      return "—";
    }
    var total = Math.round(seconds);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    var ss = (secs < 10 ? "0" : "") + secs;
    if (hours) {
      return hours + ":" + (minutes < 10 ? "0" : "") + minutes + ":" + ss;
    }
    return minutes + ":" + ss;
  }

  window.lmsLiveProgress({
    going: function (state) {
      return state === "running";
    },
    render: function (p, page) {
      var finished = p.done + p.failed + p.cancelled;
      var max = Math.max(p.total, 1);
      if (page.bar) {
        page.bar.max = max;
        page.bar.value = Math.min(finished, max);
        page.bar.textContent = finished + " / " + p.total;
      }
      page.set("done", number(p.done));
      page.set("failed", number(p.failed));
      page.set("total", number(p.total));
      page.set("cancelled", number(p.cancelled));
      page.set("rate_per_minute", number(p.rate_per_minute, 1));
      page.set("seconds_left", clock(p.seconds_left));
      page.show("[data-waiting-for-gpu]", Boolean(p.waiting_for_gpu));
      page.state(p.state);
      if (p.state !== "running") {
        if (page.note) {
          page.note.hidden = true;
        }
        page.show("[data-while-running]", false);
      }
    }
  });
})();
