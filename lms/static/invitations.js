/* Live progress of an invitation round (lms/templates/invitations/batch.html), on
   live-progress.js: the bar and the figures while the worker sends; what went wrong, and
   the button to go on, when it stops. */
(function () {
  "use strict";

  function unfinished(state) {
    return state === "queued" || state === "running";
  }

  function clock(seconds) {
    var total = Math.round(seconds);
    var minutes = Math.floor(total / 60);
    var secs = total % 60;
    return minutes + ":" + (secs < 10 ? "0" : "") + secs;
  }

  // The rate since this page first saw the round sending (the server keeps no history).
  var first = null;

  function speed(p, page) {
    var now = Date.now();
    if (p.state !== "running" || first === null || p.done < first.done) {
      first = p.state === "running" ? { at: now, done: p.done } : null;
      return;
    }
    var seconds = (now - first.at) / 1000;
    if (seconds < 2 || p.done === first.done) {
      return;
    }
    var perSecond = (p.done - first.done) / seconds;
    page.set("per_second", Number(perSecond).toLocaleString(page.lang, { maximumFractionDigits: 0 }));
    page.set("seconds_left", clock(Math.max(p.total - p.done, 0) / perSecond));
  }

  window.lmsLiveProgress({
    going: unfinished,
    render: function (p, page) {
      var max = Math.max(p.total, 1);
      if (page.bar) {
        page.bar.max = max;
        page.bar.value = Math.min(p.done, max);
        page.bar.textContent = p.done + " / " + p.total;
      }
      page.set("sent", Number(p.sent).toLocaleString(page.lang));
      page.set("total", Number(p.total).toLocaleString(page.lang));
      page.set("bounced", Number(p.bounced).toLocaleString(page.lang));
      page.set("unconfirmed", Number(p.unconfirmed).toLocaleString(page.lang));
      page.set("error", p.error || "");
      speed(p, page);
      page.state(p.state);
      page.show('[data-when="unconfirmed"]', p.unconfirmed > 0);
      page.show('[data-when="failed"]', p.state === "failed");
      page.show('[data-when="stale"]', p.stale);
      page.show("[data-when-resume]", p.stale || p.state === "failed");
      page.show("[data-while-running]", unfinished(p.state));
    }
  });
})();
