// The "Generate" button of the webhook form: fills the secret field with
// 32 random bytes from the browser's CSPRNG, as 64 hex characters. The
// button stays hidden without JavaScript; the form works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-generate-secret]").forEach(function (button) {
    var input = document.getElementById(button.dataset.generateSecret);
    if (!input || !window.crypto || !window.crypto.getRandomValues) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var bytes = new Uint8Array(32);
      window.crypto.getRandomValues(bytes);
      input.value = Array.from(bytes, function (b) {
        return b.toString(16).padStart(2, "0");
      }).join("");
      input.focus();
      input.select();
    });
  });
});
