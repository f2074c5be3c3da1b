// The browser's time zone, for pages that show dates (lms/formatting.py): kept in a cookie so
// the server renders moments in it. An account's own choice wins over it on the server.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("tz=") === 0; })[0];
  var value = encodeURIComponent(zone);
  if (current !== "tz=" + value) {
    document.cookie = "tz=" + value + "; path=/; max-age=31536000; SameSite=Lax";
  }
})();
