// Attune's live page: consent, camera, frames over the WebSocket /ws/live/, the expression overlay and the
// adapted content. Plain JavaScript, no framework; it talks to nothing but this site.
//
// The camera is off until the visitor agrees in the consent dialog. Frames are drawn to a small canvas, sent
// as JPEG one at a time (the next only after the reply to the previous one) and at most data-max-fps a second.
// Stop ends the camera tracks and the connection, which makes the server forget this visitor's mood.
//
// "Why am I seeing this?" always speaks of what the page shows now: the content's reason (about the reading
// it was chosen for) and, when the reading shown beside it is another one, what that reading is and how long
// the content stays before it follows. Without the server the reading greys out; after
// data-offline-camera-stop-s seconds the camera turns off, and on again when the server is back (only if the
// visitor turned it on in this page view and did not press Stop).
(function () {
  "use strict";

  const root = document.getElementById("live");
  if (!root) return;

  const config = {
    wsPath: root.dataset.wsPath || "/ws/live/",
    maxFps: positive(parseFloat(root.dataset.maxFps), 5),
    width: positive(parseInt(root.dataset.frameWidth, 10), 320),
    height: positive(parseInt(root.dataset.frameHeight, 10), 240),
    quality: positive(parseFloat(root.dataset.jpegQuality), 0.7),
    offlineStopS: positive(parseFloat(root.dataset.offlineCameraStopS), 20),
  };
  const EXPRESSIONS = readJson("live-expressions") || []; // emotions.labels.EMOTIONS, from the page
  const WORDS = readJson("live-reading-words") || {}; // adaptation.engine.reading_words(): {mood: {was, now}}
  const READING_OFF = "off"; // WORDS' key for "no camera reading"
  const REPLY_TIMEOUT_MS = 5000; // a reply that never comes must not stop the frames for good
  const PING_MS = 25000; // keeps an open page from being closed as idle
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const SAME_SITE = /^\/(?!\/)/;
  const WEB_LINK = /^https?:\/\//i;

  const el = {
    start: byId("live-start"),
    status: byId("live-status"),
    dialog: byId("consent"),
    badge: byId("live-badge"),
    badgeText: byId("live-badge-text"),
    stop: byId("live-stop"),
    selfView: byId("self-view"),
    video: byId("self-video"),
    overlay: byId("self-overlay"),
    expression: byId("self-expression"),
    mood: byId("self-mood"),
    faces: byId("self-faces"),
    bars: byId("self-bars"),
    model: byId("self-model"),
    adapted: byId("adapted"),
    reason: byId("adapted-reason"),
  };
  const frameCanvas = document.createElement("canvas");
  frameCanvas.width = config.width;
  frameCanvas.height = config.height;
  const frameContext = frameCanvas.getContext("2d");

  const initial = readJson("live-decision");
  const state = {
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    serverFps: null,
    stream: null,
    capturing: false,
    inFlight: false,
    replyTimer: null,
    pumpTimer: null,
    lastSentAt: -Infinity,
    framesSent: 0,
    decision: initial,
    socketDecision: null,
    themeKeys: new Set(Object.keys((initial && initial.theme && initial.theme.css) || {})),
    slotKeys: new Map(), // slot container → what it shows, so an edited item renders anew
    holdUntil: 0, // performance.now() until which a cool-down keeps the content on screen
    reading: null, // the reading shown beside the content: {mood, next} from the last "emotion"
    reasonTimer: null,
    resumeOnReconnect: false, // the camera went off because the server was gone: turn it on again with it
    offlineTimer: null,
  };
  for (const container of el.adapted.querySelectorAll("[data-slot]")) {
    const items = (initial && initial.items && initial.items[container.dataset.slot]) || [];
    state.slotKeys.set(container, JSON.stringify(items));
  }

  // --- Connection ------------------------------------------------------------------------------------

  function connect() {
    clearTimeout(state.reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(scheme + "//" + location.host + config.wsPath);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    state.socketDecision = null;
    ws.addEventListener("open", () => {
      if (state.ws !== ws) return;
      state.attempt = 0;
      serverBack();
      if (el.status.dataset.state === "connection-lost") {
        status(state.capturing ? "on" : "off", state.capturing ? onMessage() : "");
      }
      startPing(PING_MS);
      schedulePump(0);
      if (state.resumeOnReconnect && !state.capturing) startCamera();
    });
    ws.addEventListener("message", (event) => {
      if (state.ws !== ws || typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    });
    ws.addEventListener("close", (event) => {
      if (state.ws !== ws) return; // a connection we closed on purpose
      state.ws = null;
      clearInterval(state.pingTimer);
      replyDone();
      serverLost();
      reconnectLater(event.code);
    });
  }

  // Without the server nothing is read: grey the reading out, say so in the badge, and release the camera
  // if the server stays away.
  function serverLost() {
    if (root.dataset.connection === "lost") return;
    root.dataset.connection = "lost";
    el.badgeText.textContent = "reconnecting…";
    clearTimeout(state.offlineTimer);
    state.offlineTimer = setTimeout(() => {
      if (state.ws && state.ws.readyState === WebSocket.OPEN) return;
      if (!state.capturing) return;
      releaseCamera();
      state.resumeOnReconnect = true;
      const seconds = config.offlineStopS;
      status(
        "connection-lost",
        `No connection to the server for ${seconds} s, so the camera is off. It comes back on when the ` +
          "connection does.",
      );
    }, config.offlineStopS * 1000);
    renderReason();
  }

  function serverBack() {
    clearTimeout(state.offlineTimer);
    root.dataset.connection = "on";
    el.badgeText.textContent = "analysis on";
  }

  function startPing(everyMs) {
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => send({ type: "ping" }), everyMs);
  }

  function reconnectLater(code) {
    // Exponential backoff with "equal jitter": never zero, and pages that lost the server together do not
    // all come back in the same instant.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    state.attempt += 1;
    const why =
      code === 4008
        ? "The server closed the connection (too many frames)."
        : code === 4503
          ? "The live service is unavailable for a moment."
          : "Connection lost.";
    const camera = state.resumeOnReconnect ? " The camera is off until the connection is back." : "";
    status("connection-lost", `${why} Retrying in ${Math.ceil(delay / 1000)} s…${camera}`);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function send(message) {
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function handle(message) {
    switch (message.type) {
      case "ready":
        state.serverFps = positive(message.max_fps, null);
        // Ping well within the server's idle timeout, whatever it is set to.
        startPing(Math.min(PING_MS, (positive(message.idle_timeout_s, 120) * 1000) / 3));
        setModel(message.model_version);
        break;
      case "emotion":
        replyDone();
        showEmotion(message);
        break;
      case "content":
        applyDecision(message);
        break;
      case "model":
        setModel(message.version);
        break;
      case "warning":
        replyDone();
        break;
      case "error":
        replyDone();
        if (message.code !== "invalid_click") notice(message);
        break;
      default:
        break; // ready for message types a newer server may add
    }
  }

  // --- Camera ----------------------------------------------------------------------------------------

  el.start.hidden = false;
  el.start.addEventListener("click", () => {
    if (typeof el.dialog.showModal === "function") el.dialog.showModal();
    else if (window.confirm(el.dialog.innerText)) startCamera(); // very old browsers: no <dialog>
  });
  el.dialog.addEventListener("close", () => {
    if (el.dialog.returnValue === "accept") startCamera();
  });
  el.stop.addEventListener("click", () => stopCamera());

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status("unsupported", "This browser cannot share a camera with this page (it needs HTTPS).");
      return;
    }
    status("starting", "Asking for the camera…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: config.width, height: config.height, facingMode: "user" },
        audio: false,
      });
    } catch (error) {
      cameraFailed(error);
      return;
    }
    if (state.stream) {
      // Started twice (a reconnect raced a click): keep the first stream.
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    state.stream = stream;
    state.capturing = true;
    state.resumeOnReconnect = false;
    state.reading = null;
    el.video.srcObject = stream;
    el.video.play().catch(() => {});
    for (const track of stream.getTracks()) {
      // The camera can go away by itself: unplugged, or permission revoked in the browser.
      track.addEventListener("ended", () => {
        if (state.stream === stream) stopCamera("The camera stopped. Nothing is being analysed.");
      });
    }
    el.start.hidden = true;
    el.badge.hidden = false;
    el.selfView.hidden = false;
    if (root.dataset.connection !== "lost") status("on", onMessage());
    if (!state.ws) connect();
    renderReason();
    schedulePump(0);
  }

  function cameraFailed(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      status(
        "denied",
        "Camera denied: the page works without it. To try again, allow the camera for this site in " +
          "your browser's settings and press the button again.",
      );
    } else if (name === "NotFoundError" || name === "OverconstrainedError") {
      status("no-camera", "No camera was found. The page works without one.");
    } else if (name === "NotReadableError" || name === "AbortError") {
      status("camera-busy", "The camera could not start; another application may be using it.");
    } else {
      status("camera-error", "The camera could not start.");
    }
  }

  // Stop the camera tracks and hide the reading; the connection stays as it is.
  function releaseCamera() {
    state.capturing = false;
    clearTimeout(state.pumpTimer);
    replyDone();
    if (state.stream) {
      for (const track of state.stream.getTracks()) track.stop();
      state.stream = null;
    }
    el.video.srcObject = null;
    el.badge.hidden = true;
    el.selfView.hidden = true;
    el.start.hidden = false;
    showEmotion({ faces: [], width: config.width, height: config.height, mood: "", confidence: 0 });
    state.reading = null;
    renderReason();
  }

  function stopCamera(message) {
    state.resumeOnReconnect = false; // the visitor's Stop holds until they turn it on again
    releaseCamera();
    // A fresh connection: the server drops everything it held about this one (mood, what was shown),
    // and the page goes back to the content for visitors without a camera.
    const old = state.ws;
    state.ws = null;
    clearInterval(state.pingTimer);
    if (old) old.close(1000, "camera stopped");
    state.attempt = 0;
    connect();
    status("off", message || "Camera off. Nothing is being analysed.");
  }

  function onMessage() {
    return "Analysis on. Each frame is analysed in memory and discarded.";
  }

  document.addEventListener("visibilitychange", () => {
    if (!state.capturing) return;
    // No reason to read a face nobody is looking at the page with.
    send({ type: document.hidden ? "pause" : "resume" });
    if (!document.hidden) schedulePump(0);
  });

  // --- Frames ----------------------------------------------------------------------------------------

  function schedulePump(delay) {
    clearTimeout(state.pumpTimer);
    state.pumpTimer = setTimeout(pump, delay);
  }

  function pump() {
    const ws = state.ws;
    if (!state.capturing || state.inFlight || document.hidden) return;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // the open handler starts again
    const fps = Math.min(config.maxFps, state.serverFps || config.maxFps);
    const wait = state.lastSentAt + 1000 / fps - performance.now();
    if (wait > 0) {
      schedulePump(wait);
      return;
    }
    if (el.video.readyState < 2 || !el.video.videoWidth) {
      schedulePump(100);
      return;
    }
    drawCover(el.video, frameContext, config.width, config.height);
    state.inFlight = true;
    state.lastSentAt = performance.now();
    frameCanvas.toBlob(
      (blob) => {
        if (!blob || !state.capturing || state.ws !== ws || ws.readyState !== WebSocket.OPEN) {
          replyDone();
          return;
        }
        ws.send(blob);
        state.framesSent += 1;
        clearTimeout(state.replyTimer);
        state.replyTimer = setTimeout(replyDone, REPLY_TIMEOUT_MS);
      },
      "image/jpeg",
      config.quality,
    );
  }

  function replyDone() {
    clearTimeout(state.replyTimer);
    if (!state.inFlight) return;
    state.inFlight = false;
    if (state.capturing) schedulePump(0);
  }

  // Crop the centre of the video to the frame's proportions, as the preview's object-fit: cover does, so
  // boxes in frame coordinates land on the face in the preview.
  function drawCover(video, context, width, height) {
    const scale = Math.max(width / video.videoWidth, height / video.videoHeight);
    const sw = width / scale;
    const sh = height / scale;
    const sx = (video.videoWidth - sw) / 2;
    const sy = (video.videoHeight - sh) / 2;
    context.drawImage(video, sx, sy, sw, sh, 0, 0, width, height);
  }

  // --- Expression overlay ----------------------------------------------------------------------------

  function showEmotion(message) {
    const faces = Array.isArray(message.faces) ? message.faces : [];
    const canvas = el.overlay;
    canvas.width = message.width || config.width;
    canvas.height = message.height || config.height;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.font = `${Math.round(canvas.height / 16)}px system-ui, sans-serif`;
    context.textBaseline = "bottom";
    const items = [];
    faces.forEach((face, index) => {
      const [x, y, w, h] = face.box;
      const left = canvas.width - x - w; // the preview is mirrored; the frame is not
      const label = `${face.dominant} ${percent(face.probabilities[face.dominant])}`;
      context.lineWidth = index === 0 ? 3 : 1.5;
      context.strokeStyle = index === 0 ? "#ffd400" : "#ffffff";
      context.strokeRect(left, y, w, h);
      const textWidth = context.measureText(label).width + 8;
      const textHeight = Math.round(canvas.height / 14);
      context.fillStyle = "rgba(0, 0, 0, 0.6)";
      context.fillRect(left, Math.max(0, y - textHeight), textWidth, textHeight);
      context.fillStyle = "#ffffff";
      context.fillText(label, left + 4, Math.max(textHeight, y) - 2);
      const li = document.createElement("li");
      li.dataset.box = face.box.join(",");
      li.dataset.expression = face.dominant;
      li.textContent = `${index === 0 ? "Main face" : "Face " + (index + 1)}: ${label}`;
      items.push(li);
    });
    el.faces.replaceChildren(...items);
    el.faces.dataset.count = String(faces.length);
    const primary = faces[0];
    el.expression.textContent = primary ? primary.dominant : faces.length === 0 && message.mood ? "no face" : "…";
    el.selfView.dataset.expression = primary ? primary.dominant : "";
    el.mood.textContent = moodLabel(message);
    el.selfView.dataset.mood = message.mood || "";
    el.selfView.dataset.moodNext = message.mood_next || "";
    el.selfView.dataset.confidence = String(message.confidence || 0);
    if (message.mood) {
      state.reading = { mood: message.mood, next: message.mood_next || null };
      renderReason();
    }
    for (const li of el.bars.children) {
      const p = primary ? primary.probabilities[li.dataset.label] || 0 : 0;
      li.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(1)}%`;
      li.querySelector(".bar-value").textContent = primary ? percent(p) : "–";
      li.classList.toggle("bar-top", Boolean(primary) && li.dataset.label === primary.dominant);
    }
    if (message.model_version) setModel(message.model_version);
  }

  // While the tracker waits out a change (mood_next), the held mood's probability may have collapsed: the
  // mood is changing, and its number would mislead.
  function moodLabel(message) {
    if (!message.mood) return "…";
    if (message.mood_next) return "changing…";
    const name = message.mood.replace("_", " ");
    return EXPRESSIONS.includes(message.mood) ? `${name} (${percent(message.confidence)})` : name;
  }

  function setModel(version) {
    if (version) el.model.textContent = version;
  }

  // --- Adapted content -------------------------------------------------------------------------------

  function applyDecision(decision) {
    state.decision = decision;
    state.socketDecision = decision;
    state.holdUntil = performance.now() + (Number(decision.hold_s) || 0) * 1000;
    applyTheme(decision.theme || { name: "", css: {} });
    const slots = decision.items || {};
    for (const container of el.adapted.querySelectorAll("[data-slot]")) {
      renderSlot(container, slots[container.dataset.slot] || []);
    }
    el.adapted.dataset.rule = decision.rule || "";
    el.adapted.dataset.mood = decision.mood || "";
    el.adapted.dataset.decisionId = decision.decision_id || "";
    renderReason();
  }

  // --- Why am I seeing this? -------------------------------------------------------------------------

  // The key of the reading shown beside the content, in the words' terms: a mood, "changing" while the mood
  // is changing, "pending" before the first reading, "lost" without the server, READING_OFF with no camera.
  function shownReading() {
    if (!state.capturing) return READING_OFF;
    if (root.dataset.connection === "lost") return "lost";
    if (!state.reading) return "pending";
    return state.reading.next ? "changing" : state.reading.mood;
  }

  function reasonText() {
    const decision = state.decision;
    if (!decision) return "";
    const chosenFor = decision.mood || READING_OFF;
    const shown = shownReading();
    let reason = decision.reason || "";
    if (shown === chosenFor) return reason;
    if (chosenFor === READING_OFF && state.capturing) {
      // The content was chosen before the camera was on; its reason ("reading is off") no longer holds.
      reason = "Expression reading has just started: until it has read you, you see the usual page.";
      if (shown === "pending") return reason;
    }
    if (shown === "lost") return `${reason} The connection to the server is lost, so nothing is read now.`;
    if (shown === "pending") return `${reason} Your expression is being read: the page follows in a moment.`;
    if (shown === "changing" && state.reading.next === "no_face") {
      return `${reason} Now no face is in view: the page waits a moment in case it comes back.`;
    }
    if (shown === "changing") return `${reason} Now your expression is changing: the page waits until it settles.`;
    const now = (WORDS[shown] && WORDS[shown].now) || `you look ${shown}`;
    // Content for no camera, no face or an unclear face is never held; nor is anything once the camera is off.
    const left = shown === READING_OFF ? 0 : Math.ceil((state.holdUntil - performance.now()) / 1000);
    if (left > 0) {
      const unit = left === 1 ? "second" : "seconds";
      return `${reason} Now ${now}: keeping this for ${left} more ${unit} so the page doesn't flicker.`;
    }
    return `${reason} Now ${now}: the page follows in a moment.`;
  }

  function renderReason() {
    const text = reasonText();
    if (el.reason.textContent !== text) el.reason.textContent = text;
    el.reason.dataset.chosenFor = (state.decision && state.decision.mood) || READING_OFF;
    el.reason.dataset.shown = shownReading();
    // Count the seconds down while the content waits for the reading shown beside it.
    clearTimeout(state.reasonTimer);
    if (state.holdUntil > performance.now() && el.reason.dataset.shown !== el.reason.dataset.chosenFor) {
      state.reasonTimer = setTimeout(renderReason, 250);
    }
  }

  function applyTheme(theme) {
    const style = document.documentElement.style;
    const css = theme.css || {};
    for (const name of state.themeKeys) {
      if (!(name in css)) style.removeProperty(name);
    }
    state.themeKeys = new Set();
    for (const [name, value] of Object.entries(css)) {
      if (/^--[a-z0-9-]+$/.test(name) && typeof value === "string") {
        style.setProperty(name, value);
        state.themeKeys.add(name);
      }
    }
    document.documentElement.dataset.theme = theme.name || "";
  }

  function renderSlot(container, items) {
    const key = JSON.stringify(items);
    container.hidden = items.length === 0;
    // The same items, unedited: keep them (and any playing video) as they are. An edited item renders anew.
    if (state.slotKeys.get(container) === key) return;
    state.slotKeys.set(container, key);
    container.dataset.items = items.map((item) => String(item.id)).join(",");
    container.replaceChildren(...items.map(renderItem));
  }

  function renderItem(item) {
    const article = document.createElement("article");
    article.className = "item";
    article.dataset.kind = item.kind;
    article.dataset.itemId = String(item.id);
    if (item.media_url && SAME_SITE.test(item.media_url)) {
      const isVideo = item.kind === "video" || /\.(mp4|webm)$/i.test(item.media_url);
      const media = document.createElement(isVideo ? "video" : "img");
      media.src = item.media_url;
      if (isVideo) {
        Object.assign(media, { muted: true, loop: true, autoplay: true, playsInline: true });
        if (item.alt) media.setAttribute("aria-label", item.alt);
      } else {
        media.alt = item.alt || "";
      }
      article.append(media);
    }
    const text = document.createElement("div");
    text.className = "item-text";
    if (item.kind === "ad") text.append(element("span", "item-ad", "Ad"));
    text.append(element("h2", "item-title", item.title));
    if (item.body) text.append(element("p", "", item.body));
    if (item.cta_url && (SAME_SITE.test(item.cta_url) || WEB_LINK.test(item.cta_url))) {
      const link = element("a", "cta", item.cta_label || "Learn more");
      link.href = item.cta_url;
      text.append(link);
    }
    article.append(text);
    return article;
  }

  el.adapted.addEventListener("click", (event) => {
    const article = event.target.closest("[data-item-id]");
    const decision = state.socketDecision; // the server counts clicks on what it sent this connection
    if (!article || !decision) return;
    send({ type: "click", item_id: Number(article.dataset.itemId), decision_id: decision.decision_id });
  });

  // --- Messages to the visitor -----------------------------------------------------------------------

  function status(name, text) {
    el.status.dataset.state = name;
    el.status.textContent = text;
  }

  const FRAME_ERRORS = {
    overloaded: "The server is busy; some frames are skipped.",
    model_unavailable: "Expressions cannot be read right now (no model is loaded); the page works without.",
    too_large: "A frame was too large to analyse.",
  };

  function notice(message) {
    if (!state.capturing) return;
    const text = FRAME_ERRORS[message.code] || `A frame could not be analysed (${message.code}).`;
    status("frame-error", text);
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => {
      if (state.capturing && el.status.dataset.state === "frame-error") status("on", onMessage());
    }, 4000);
  }

  // --- Helpers ---------------------------------------------------------------------------------------

  function byId(id) {
    return document.getElementById(id);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = text;
    return node;
  }

  function readJson(id) {
    const node = byId(id);
    try {
      return node ? JSON.parse(node.textContent) : null;
    } catch (error) {
      return null;
    }
  }

  function positive(value, fallback) {
    return Number.isFinite(value) && value > 0 ? value : fallback;
  }

  function percent(p) {
    return `${Math.round((p || 0) * 100)} %`;
  }

  // Read-only numbers for people debugging the page (and for the browser test).
  window.attuneLive = Object.freeze({
    stats: () => ({
      framesSent: state.framesSent,
      capturing: state.capturing,
      socket: state.ws ? state.ws.readyState : -1,
      decisionId: state.decision ? state.decision.decision_id : null,
      reading: shownReading(),
      chosenFor: state.decision ? state.decision.mood || READING_OFF : null,
    }),
  });

  connect();
})();
