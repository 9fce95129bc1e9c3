// Live theme preview in the admin: mirrors the form's fields onto the preview's CSS custom properties.
(function () {
  "use strict";
  var MOTION = { none: "0", calm: "0.5", lively: "1" };

  function bind() {
    var preview = document.getElementById("attune-theme-preview");
    if (!preview) { return; }

    function set(name, value) { preview.style.setProperty(name, value); }

    document.querySelectorAll("input[data-css-var]").forEach(function (input) {
      var update = function () { set(input.dataset.cssVar, input.value); };
      input.addEventListener("input", update);
      update();
    });

    var scale = document.getElementById("id_font_scale");
    if (scale) {
      var updateScale = function () {
        var value = parseFloat(scale.value);
        if (value >= 0.75 && value <= 1.5) { set("--font-scale", String(value)); }
      };
      scale.addEventListener("input", updateScale);
      updateScale();
    }

    var motion = document.getElementById("id_motion");
    if (motion) {
      var updateMotion = function () {
        set("--motion", MOTION[motion.value] || "0.5");
        preview.dataset.motion = motion.value;
      };
      motion.addEventListener("change", updateMotion);
      updateMotion();
    }

    var url = document.getElementById("id_background_url");
    if (url) {
      var updateUrl = function () {
        var value = url.value.trim();
        // Same rule as the server: only a path on this site, and nothing that could end the url().
        if (/^\/[^\/\\\s"')(]*[^\s"')(\\]*$/.test(value)) { set("--bg-image", 'url("' + value + '")'); }
        else if (value === "") { set("--bg-image", "none"); }
      };
      url.addEventListener("input", updateUrl);
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", bind); } else { bind(); }
})();
