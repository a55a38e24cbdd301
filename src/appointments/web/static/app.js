// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Show times in the browser's own zone: tell the server once, through a cookie.
  var shown = document.documentElement.dataset.tz;
  var zone = null;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = null; }
  var chosen = /(?:^|; )tz=/.test(document.cookie) || /[?&]tz=/.test(location.search);
  if (zone && zone !== shown && !chosen) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    location.reload();
    return;
  }

  // Live countdown of a hold; when it runs out, reload: the server says what happened.
  var timer = document.querySelector("[data-countdown]");
  if (timer) {
    var ends = Date.now() + 1000 * Number(timer.dataset.seconds);
    var tick = function () {
      var left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      timer.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " left";
      if (left === 0) {
        timer.textContent = "The hold has run out";
        clearInterval(handle);
        setTimeout(function () { location.reload(); }, 1500);
      }
    };
    var handle = setInterval(tick, 1000);
    tick();
  }

  // No double submissions: a second click while a form is on its way does nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
  });
})();
