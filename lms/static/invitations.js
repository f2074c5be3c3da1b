/* Live progress of an invitation round (lms/templates/invitations/batch.html), on
   live-progress.js: the bar and the figures while the worker sends; what went wrong, and
   the button to go on, when it stops. */
(function () {
  "use strict";

  function unfinished(state) {
    return state === "queued" || state === "running";
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
      page.state(p.state);
      page.show('[data-when="unconfirmed"]', p.unconfirmed > 0);
      page.show('[data-when="failed"]', p.state === "failed");
      page.show('[data-when="stale"]', p.stale);
      page.show("[data-when-resume]", p.stale || p.state === "failed");
      page.show("[data-while-running]", unfinished(p.state));
    }
  });
})();
