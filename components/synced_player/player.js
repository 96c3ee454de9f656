// Synced multi-video player (Streamlit components v2, mounted in a shadow root).
//
// Streamlit calls the default export again whenever the data changes (every rerun that changes
// a tile's src or status), always with the same parentElement. The player therefore lives in a
// WeakMap keyed by that element and `update()` reconciles tiles in place: existing <video>
// elements are never recreated or moved (a moved <video> can be paused by the browser), so a
// rerun never restarts playback. Order is expressed with CSS `order`, not DOM position.
//
// Sync: one master clock (performance.now() × rate) owns the timeline, and every video is
// corrected against it on each animation frame: a big drift is a seek (aimed ahead by a lead
// learnt from where videos really resume), a small one a playbackRate nudge. Starting (play,
// seek while playing, loop, a stalled video) freezes the clock until every video is ready,
// then launches them together and anchors the clock where they really are. The clock also
// eases towards the heard video (never corrected: sound must not skip) or, with none, the
// videos' median, so a lag they share is not fought one by one. Videos with an audio track
// are corrected differently (see nudgeEpisode): Chromium makes rate changes costly for them.
//
// Labels and statuses come from providers: they are only ever set with textContent.

const INSTANCES = new WeakMap();

const SPEEDS = [0.25, 0.5, 1, 1.5, 2];
const HAVE_METADATA = 1;
const HAVE_FUTURE_DATA = 3;
// Silent videos: continuous rate nudge, as a fraction of the rate per second of drift (they
// take a new rate at once, so the loop can be stiff).
const NUDGE_GAIN = 5;
const NUDGE_MAX = 0.1;
const START_TIMEOUT_MS = 4000;
const LAUNCH_TIMEOUT_MS = 1500;
const STALL_GRACE_MS = 400;
const SEEK_COOLDOWN_MS = 1000;
// Videos with sound (see nudgeEpisode): corrected only when off by more than the deadband for
// a while, by a rate offset of 3–12 % held for about EPISODE_MS; seeked only when far off.
const AUDIO_DEADBAND_S = 0.015;
const AUDIO_PERSIST_MS = 250;
const AUDIO_NUDGE_MIN = 0.03;
const AUDIO_NUDGE_MAX = 0.12;
const AUDIO_EPISODE_MS = 800;
const AUDIO_MAX_HOLD_MS = 1500;
const AUDIO_SETTLE_MS = 600;
const AUDIO_SEEK_S = 0.25;
const CONSENSUS_SLEW = 0.1; // fraction of the videos' median offset taken per tick
const HEARD_SLEW = 0.3; // fraction of the heard video's offset taken per tick
const LEAD_CHECK_MS = 400;

const ICONS = {
  play: '<path d="M8 5.5v13l11-6.5z"/>',
  pause: '<path d="M7 5h3.5v14H7zM13.5 5H17v14h-3.5z"/>',
  prev: '<path d="M6 6h2v12H6zM9.5 12 18 18V6z"/>',
  next: '<path d="M16 6h2v12h-2zM6 18l8.5-6L6 6z"/>',
  loop: '<path d="M7 7h10v3l4-4-4-4v3H5v6h2zm10 10H7v-3l-4 4 4 4v-3h12v-6h-2z"/>',
  sound: '<path d="M4 9v6h4l5 5V4L8 9zm12.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z"/>',
  muted: '<path d="M4 9v6h4l5 5V4L8 9zm12.6 3 2.9-2.9-1.4-1.4-2.9 2.9-2.9-2.9-1.4 1.4 2.9 2.9-2.9 2.9 1.4 1.4 2.9-2.9 2.9 2.9 1.4-1.4z"/>',
  grid: '<path d="M4 4h7v7H4zm9 0h7v7h-7zM4 13h7v7H4zm9 0h7v7h-7z"/>',
  wipe: '<path d="M4 4h7v16H4zm9 0h7v16h-7zM11.2 2h1.6v20h-1.6z"/>',
};

function el(tag, className, attrs) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Icons are constant, trusted markup (never data from Python).
function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.innerHTML = ICONS[name];
  return svg;
}

function setIcon(button, name) {
  button.replaceChildren(icon(name));
}

function fmtTime(t) {
  if (!Number.isFinite(t) || t < 0) t = 0;
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

// A video nudged slightly ahead can reach its end a moment before the clock does; playing it
// again then would restart it from zero.
function pastEnd(v, t) {
  return t >= v.duration - 1e-3 || (v.ended && t >= v.duration - 0.25);
}

function hasAudio(v) {
  return Boolean(
    v.mozHasAudio ||
      v.webkitAudioDecodedByteCount > 0 ||
      (v.audioTracks && v.audioTracks.length > 0),
  );
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

class SyncedPlayer {
  constructor(host) {
    this.host = host;
    this.generation = 0;
    this.tiles = new Map();
    this.order = [];
    this.fps = 24;
    this.maxHeight = null;
    this.rate = 1;
    this.loop = false;
    this.audioId = undefined; // undefined: not chosen yet (defaults to the reference tile)
    this.activated = false; // a user gesture happened: unmuting is allowed
    this.mode = "grid";
    this.focusId = null;
    this.wipeA = null;
    this.wipeB = null;
    this.wipePos = 0.5;
    // Clock: `want` is the user's intent, `running` whether the timeline advances.
    this.want = false;
    this.running = false;
    this.phase = "idle"; // idle | starting | launching | running
    this.phaseSince = 0;
    this.base = 0;
    this.anchor = performance.now();
    // How far ahead of the clock a correcting seek aims, learnt from where videos really
    // resume (audio-bearing ones restart their audio first and resume later).
    this.seekLead = { audio: 0.08, silent: 0.03 };
    this.rateChangeCost = 0.02; // see nudgeEpisode
    // Opt-in trace of corrections, for diagnosing sync on a given browser.
    this.trace = window.__syncedPlayerDebug ? [] : null;
    this.scrubbing = false;
    this.scrubResume = false;
    this.raf = 0;
    this.lastTick = 0;
    this.destroyed = false;
    this.build();
    this.loopFn = () => this.frame();
    this.raf = requestAnimationFrame(this.loopFn);
    // rAF stops in hidden tabs; the interval keeps the clock and the videos consistent there.
    this.interval = setInterval(() => {
      if (performance.now() - this.lastTick > 200) this.tick();
    }, 250);
  }

  // ---------------------------------------------------------------- DOM

  build() {
    const root = el("div", "sp", {
      tabindex: "0",
      role: "region",
      "aria-label": "Synced video player",
      "data-mode": "grid",
    });
    this.root = root;
    root.syncedPlayer = this; // for diagnosis from devtools (see `trace`)

    const top = el("div", "sp-top");
    const modes = el("div", "sp-seg", { role: "group", "aria-label": "Layout" });
    this.gridBtn = el("button", "sp-btn sp-seg-btn", {
      type: "button",
      "aria-label": "Grid layout",
      "aria-pressed": "true",
      "data-action": "grid",
    });
    this.gridBtn.append(icon("grid"), document.createTextNode("Grid"));
    this.wipeBtn = el("button", "sp-btn sp-seg-btn", {
      type: "button",
      "aria-label": "Wipe: compare two videos with a divider",
      "aria-pressed": "false",
      "data-action": "wipe",
    });
    this.wipeBtn.append(icon("wipe"), document.createTextNode("Wipe"));
    modes.append(this.gridBtn, this.wipeBtn);

    this.wipePick = el("div", "sp-wipe-pick");
    const mkPick = (side, label) => {
      const wrap = el("label", "sp-pick");
      const tag = el("span", "sp-pick-tag");
      tag.textContent = side;
      const sel = el("select", "sp-select", { "aria-label": label });
      wrap.append(tag, sel);
      return [wrap, sel];
    };
    const [aWrap, aSel] = mkPick("A", "Wipe: left video (A)");
    const [bWrap, bSel] = mkPick("B", "Wipe: right video (B)");
    this.wipeASel = aSel;
    this.wipeBSel = bSel;
    this.wipePick.append(aWrap, bWrap);

    this.hint = el("span", "sp-hint");
    this.hint.textContent = "Click a tile to focus it · Esc returns";
    top.append(modes, this.wipePick, this.hint);

    this.stage = el("div", "sp-stage");
    this.divider = el("div", "sp-divider");
    this.handle = el("div", "sp-handle", {
      role: "slider",
      tabindex: "0",
      "aria-label": "Wipe divider position",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": "50",
    });
    this.handle.append(el("span", "sp-knob"));
    this.divider.append(this.handle);
    this.stage.append(this.divider);

    const bar = el("div", "sp-bar");
    this.playBtn = el("button", "sp-btn sp-play", { type: "button", "aria-label": "Play" });
    setIcon(this.playBtn, "play");
    this.prevBtn = el("button", "sp-btn", { type: "button", "aria-label": "Previous frame" });
    setIcon(this.prevBtn, "prev");
    this.nextBtn = el("button", "sp-btn", { type: "button", "aria-label": "Next frame" });
    setIcon(this.nextBtn, "next");
    this.scrub = el("input", "sp-scrub", {
      type: "range",
      min: "0",
      max: "0",
      step: "any",
      value: "0",
      "aria-label": "Position",
    });
    this.timeEl = el("span", "sp-time", {
      role: "timer",
      "aria-label": "Current time / total time",
    });
    this.timeEl.textContent = "0:00.00 / 0:00.00";
    this.speedSel = el("select", "sp-select sp-speed", { "aria-label": "Playback speed" });
    for (const s of SPEEDS) {
      const opt = el("option");
      opt.value = String(s);
      opt.textContent = `${s}×`;
      if (s === 1) opt.selected = true;
      this.speedSel.append(opt);
    }
    this.loopBtn = el("button", "sp-btn", {
      type: "button",
      "aria-label": "Loop",
      "aria-pressed": "false",
    });
    setIcon(this.loopBtn, "loop");
    const transport = el("div", "sp-transport");
    transport.append(this.playBtn, this.prevBtn, this.nextBtn);
    const extras = el("div", "sp-extras");
    extras.append(this.timeEl, this.speedSel, this.loopBtn);
    bar.append(transport, this.scrub, extras);

    root.append(top, this.stage, bar);
    this.host.append(root);
    this.bind();
  }

  bind() {
    const on = (target, type, fn, opts) => {
      target.addEventListener(type, fn, opts);
      (this.unbinders ||= []).push(() => target.removeEventListener(type, fn, opts));
    };
    const gesture = () => {
      if (!this.activated) {
        this.activated = true;
        this.applyAudio();
      }
    };
    on(this.root, "pointerdown", gesture, true);
    on(this.root, "keydown", gesture, true);

    on(this.playBtn, "click", () => this.toggle());
    on(this.prevBtn, "click", () => this.step(-1));
    on(this.nextBtn, "click", () => this.step(1));
    on(this.loopBtn, "click", () => {
      this.loop = !this.loop;
      this.loopBtn.setAttribute("aria-pressed", String(this.loop));
    });
    on(this.speedSel, "change", () => this.setRate(Number(this.speedSel.value)));
    on(this.gridBtn, "click", () => this.setMode("grid"));
    on(this.wipeBtn, "click", () => this.setMode("wipe"));
    on(this.wipeASel, "change", () => {
      this.wipeA = this.wipeASel.value;
      if (this.wipeB === this.wipeA) this.wipeB = this.otherVideoId(this.wipeA);
      this.render();
    });
    on(this.wipeBSel, "change", () => {
      this.wipeB = this.wipeBSel.value;
      if (this.wipeA === this.wipeB) this.wipeA = this.otherVideoId(this.wipeB);
      this.render();
    });

    // Scrubbing pauses the clock while the thumb is held, then resumes if it was playing.
    on(this.scrub, "pointerdown", () => {
      this.scrubbing = true;
      this.scrubResume = this.want;
      if (this.want) this.pause();
    });
    on(this.scrub, "input", () => this.seek(Number(this.scrub.value)));
    on(this.scrub, "change", () => {
      this.seek(Number(this.scrub.value));
      if (this.scrubbing) {
        this.scrubbing = false;
        if (this.scrubResume) this.play();
      }
    });
    on(window, "pointerup", () => {
      if (this.scrubbing) {
        this.scrubbing = false;
        if (this.scrubResume) this.play();
      }
    });

    on(this.root, "keydown", (e) => this.onKey(e));

    // Wipe divider: drag with a pointer, or arrow keys when it has focus.
    const dragTo = (clientX) => {
      const box = this.divider.getBoundingClientRect();
      if (box.width > 0) this.setWipe((clientX - box.left) / box.width);
    };
    on(this.handle, "pointerdown", (e) => {
      e.preventDefault();
      this.handle.setPointerCapture(e.pointerId);
      this.dragging = true;
      this.handle.focus();
    });
    on(this.handle, "pointermove", (e) => {
      if (this.dragging) dragTo(e.clientX);
    });
    const endDrag = (e) => {
      if (!this.dragging) return;
      this.dragging = false;
      if (this.handle.hasPointerCapture(e.pointerId)) this.handle.releasePointerCapture(e.pointerId);
    };
    on(this.handle, "pointerup", endDrag);
    on(this.handle, "pointercancel", endDrag);
    on(this.handle, "keydown", (e) => {
      const delta = { ArrowLeft: -0.05, ArrowRight: 0.05, Home: -1, End: 1 }[e.key];
      if (delta === undefined) return;
      e.preventDefault();
      e.stopPropagation();
      this.setWipe(this.wipePos + delta);
    });

    this.resizeObs = new ResizeObserver(() => this.layout());
    this.resizeObs.observe(this.root);
    on(window, "resize", () => this.layout());
  }

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return; // the browser's own shortcuts
    const t = e.target;
    const tag = t && t.tagName ? t.tagName : "";
    const formField = tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA";
    if (e.key === " " || e.key === "Spacebar") {
      // A focused button or field keeps its own meaning for space.
      if (formField || tag === "BUTTON") return;
      e.preventDefault();
      this.toggle();
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      if (formField) return;
      e.preventDefault();
      this.step(e.key === "ArrowLeft" ? -1 : 1);
    } else if (e.key === "Escape") {
      if (this.focusId !== null) {
        e.preventDefault();
        this.setFocus(null);
      }
    } else if (e.key === "Enter" && t && t.classList && t.classList.contains("sp-tile")) {
      e.preventDefault();
      this.tileClicked(t.dataset.id);
    }
  }

  createTile(id) {
    const tile = el("div", "sp-tile", { role: "group", tabindex: "0" });
    tile.dataset.id = id;
    const media = el("div", "sp-media");
    const placeholder = el("div", "sp-placeholder");
    const statusText = el("p", "sp-status-text");
    placeholder.append(el("span", "sp-pulse", { "aria-hidden": "true" }), statusText);
    const ended = el("div", "sp-ended");
    const endedChip = el("span", "sp-ended-chip");
    endedChip.textContent = "Ended";
    ended.append(endedChip);
    const loading = el("div", "sp-loading", { "aria-hidden": "true" });
    loading.append(el("span", "sp-spinner"));
    const head = el("div", "sp-head");
    const chip = el("div", "sp-chip");
    const ref = el("span", "sp-ref");
    ref.textContent = "Reference";
    const label = el("span", "sp-label");
    const sub = el("span", "sp-sub");
    chip.append(ref, label, sub);
    const speaker = el("button", "sp-btn sp-speaker", { type: "button", "aria-pressed": "false" });
    setIcon(speaker, "muted");
    head.append(chip, speaker);
    tile.append(media, placeholder, loading, ended, head);
    const rec = {
      id,
      el: tile,
      media,
      placeholder,
      statusText,
      label,
      sub,
      speaker,
      video: null,
      src: null,
      data: null,
      playPending: false,
      seekStartedAt: 0,
      seekTarget: null,
      lastCorrection: 0,
      leadCheck: null, // after a correcting seek: {kind, at} — when to judge the lead
      episode: null, // a held rate offset on a video with sound (see nudgeEpisode)
      settleUntil: 0,
      overSince: 0,
      waitingSince: 0,
      error: null,
    };
    speaker.addEventListener("click", (e) => {
      e.stopPropagation();
      this.activated = true;
      this.audioId = this.audioId === id ? null : id;
      this.applyAudio();
    });
    tile.addEventListener("click", () => this.tileClicked(id));
    return rec;
  }

  setVideo(rec, src) {
    if (rec.src === src) return;
    rec.src = src;
    rec.error = null;
    rec.seekTarget = null;
    if (!src) {
      if (rec.video) {
        rec.video.pause();
        rec.video.removeAttribute("src");
        rec.video.load(); // frees the decoder and the connection
        rec.video.remove();
        rec.video = null;
      }
      return;
    }
    if (!rec.video) {
      const v = document.createElement("video");
      v.preload = "auto";
      v.muted = true;
      v.playsInline = true;
      v.setAttribute("muted", "");
      v.setAttribute("playsinline", "");
      v.setAttribute("preload", "auto");
      v.disablePictureInPicture = true;
      v.addEventListener("loadedmetadata", () => {
        this.layout();
        this.render();
      });
      v.addEventListener("seeked", () => {
        rec.seekStartedAt = 0;
        if (rec.leadCheck) rec.leadCheck.at = performance.now() + LEAD_CHECK_MS;
      });
      v.addEventListener("waiting", () => {
        rec.waitingSince = performance.now();
      });
      const ready = () => {
        rec.waitingSince = 0;
      };
      v.addEventListener("playing", ready);
      v.addEventListener("playing", () => this.log("playing", rec.id, +v.currentTime.toFixed(3)));
      v.addEventListener("canplay", ready);
      v.addEventListener("error", () => {
        rec.error = "This video could not be loaded.";
        this.render();
      });
      rec.video = v;
      rec.media.append(v);
    }
    rec.video.src = src;
    this.applyAudio();
  }

  // ---------------------------------------------------------------- data from Python

  update(data) {
    this.generation += 1;
    const fps = Number(data.fps);
    this.fps = Number.isFinite(fps) && fps > 0 ? fps : 24;
    const h = Number(data.height);
    this.maxHeight = Number.isFinite(h) && h > 0 ? h : null;
    const list = Array.isArray(data.tiles) ? data.tiles : [];
    const seen = new Set();
    this.order = [];
    list.forEach((t, i) => {
      if (!t || t.id === undefined || t.id === null) return;
      const id = String(t.id);
      if (seen.has(id)) return;
      seen.add(id);
      let rec = this.tiles.get(id);
      if (!rec) {
        rec = this.createTile(id);
        this.tiles.set(id, rec);
        this.stage.insertBefore(rec.el, this.divider);
      }
      rec.data = {
        label: t.label == null ? "" : String(t.label),
        status: t.status == null ? "" : String(t.status),
        reference: Boolean(t.reference),
      };
      rec.el.style.order = String(i);
      rec.label.textContent = rec.data.label;
      rec.el.setAttribute("aria-label", rec.data.label || id);
      rec.el.classList.toggle("is-reference", rec.data.reference);
      this.setVideo(rec, t.src ? String(t.src) : null);
      this.order.push(id);
    });
    for (const [id, rec] of this.tiles) {
      if (seen.has(id)) continue;
      this.setVideo(rec, null);
      rec.el.remove();
      this.tiles.delete(id);
    }
    if (this.focusId !== null && !this.tiles.has(this.focusId)) this.focusId = null;
    this.applyAudio();
    this.refreshWipeChoices();
    this.layout();
    this.render();
    this.wake();
    return this.generation;
  }

  videoIds() {
    return this.order.filter((id) => this.tiles.get(id).video);
  }

  otherVideoId(not) {
    const ids = this.videoIds();
    const results = ids.filter((id) => id !== not && !this.tiles.get(id).data.reference);
    return results[0] ?? ids.find((id) => id !== not) ?? null;
  }

  refreshWipeChoices() {
    const ids = this.videoIds();
    const results = ids.filter((id) => !this.tiles.get(id).data.reference);
    if (!ids.includes(this.wipeA)) this.wipeA = results[0] ?? ids[0] ?? null;
    if (!ids.includes(this.wipeB) || this.wipeB === this.wipeA) {
      this.wipeB = this.otherVideoId(this.wipeA);
    }
    // Rebuilt only when the choices change, so a rerun never closes an open list.
    const choices = JSON.stringify(ids.map((id) => [id, this.tiles.get(id).data.label]));
    for (const [sel, value] of [
      [this.wipeASel, this.wipeA],
      [this.wipeBSel, this.wipeB],
    ]) {
      if (sel.dataset.choices !== choices) {
        const options = ids.map((id) => {
          const opt = el("option");
          opt.value = id;
          opt.textContent = this.tiles.get(id).data.label || id;
          return opt;
        });
        sel.replaceChildren(...options);
        sel.dataset.choices = choices;
      }
      if (value !== null && sel.value !== value) sel.value = value;
    }
    const canWipe = ids.length >= 2;
    this.wipeBtn.disabled = !canWipe;
    this.wipeBtn.title = canWipe ? "" : "Needs two videos";
    if (!canWipe && this.mode === "wipe") this.mode = "grid";
  }

  // ---------------------------------------------------------------- modes

  setMode(mode) {
    this.mode = mode === "wipe" && this.videoIds().length >= 2 ? "wipe" : "grid";
    this.focusId = null;
    this.render();
    this.layout();
  }

  tileClicked(id) {
    if (this.mode !== "grid") return;
    this.setFocus(this.focusId === id ? null : id);
  }

  setFocus(id) {
    this.focusId = id;
    this.render();
    this.layout();
    this.root.focus({ preventScroll: true });
  }

  setWipe(pos) {
    this.wipePos = clamp(pos, 0, 1);
    this.stage.style.setProperty("--wipe", String(this.wipePos));
    this.handle.setAttribute("aria-valuenow", String(Math.round(this.wipePos * 100)));
  }

  // ---------------------------------------------------------------- audio

  applyAudio() {
    if (this.audioId === undefined) {
      const ref = this.order.find((id) => this.tiles.get(id).data.reference);
      if (ref !== undefined || this.order.length) this.audioId = ref ?? this.order[0];
    }
    for (const [id, rec] of this.tiles) {
      const on = id === this.audioId;
      rec.speaker.setAttribute("aria-pressed", String(on));
      const name = rec.data ? rec.data.label || id : id;
      rec.speaker.setAttribute("aria-label", on ? `Mute ${name}` : `Play audio from ${name}`);
      rec.speaker.title = on ? "Audio from this tile" : "Listen to this tile";
      setIcon(rec.speaker, on ? "sound" : "muted");
      // Browsers refuse unmuted playback before a user gesture: stay muted until one.
      if (rec.video) rec.video.muted = !(on && this.activated);
    }
  }

  // ---------------------------------------------------------------- clock

  now() {
    if (!this.running) return this.base;
    return this.base + ((performance.now() - this.anchor) / 1000) * this.rate;
  }

  setPhase(phase) {
    this.phase = phase;
    this.phaseSince = performance.now();
  }

  duration() {
    let d = 0;
    for (const rec of this.tiles.values()) {
      const v = rec.video;
      if (v && Number.isFinite(v.duration) && v.duration > d) d = v.duration;
    }
    return d;
  }

  frameDur() {
    return 1 / this.fps;
  }

  play() {
    const total = this.duration();
    if (total <= 0) return; // nothing loaded yet: no clock without a video
    if (this.base >= total - 0.5 * this.frameDur()) this.base = 0;
    this.want = true;
    this.running = false;
    this.setPhase("starting");
    this.updateButtons();
    this.tick();
  }

  pause() {
    this.base = this.now();
    this.want = false;
    this.running = false;
    this.setPhase("idle");
    this.updateButtons();
    this.tick();
  }

  toggle() {
    if (this.want) this.pause();
    else this.play();
  }

  seek(t) {
    const total = this.duration();
    this.base = clamp(t, 0, total || 0);
    this.anchor = performance.now();
    if (this.want) {
      // Every video seeks at once: relaunch them together rather than chase each one.
      this.running = false;
      this.setPhase("starting");
    }
    this.tick();
  }

  step(delta) {
    if (this.want) this.pause();
    const fd = this.frameDur();
    const total = this.duration();
    const exact = this.base * this.fps;
    const near = Math.round(exact);
    const index = Math.abs(exact - near) < 0.05 ? near : Math.floor(exact);
    const last = Math.max(0, Math.ceil(total * this.fps - 1e-6) - 1);
    const next = clamp(index + delta, 0, last);
    // A millisecond past the frame's start: a seek exactly on the boundary can land on the
    // previous frame after the browser rounds to microseconds.
    this.base = Math.min(next * fd + 0.001, total || Infinity);
    this.tick();
  }

  setRate(rate) {
    this.base = this.now();
    this.anchor = performance.now();
    this.rate = SPEEDS.includes(rate) ? rate : 1;
    for (const rec of this.tiles.values()) if (rec.video) rec.video.playbackRate = this.rate;
    this.tick();
  }

  // ---------------------------------------------------------------- loop

  // Every frame while playing or settling; once paused and settled the loop sleeps (the
  // interval still looks in four times a second) until something wakes it.
  frame() {
    this.raf = 0;
    if (this.destroyed) return;
    this.tick(true);
    if (this.want || this.settling()) this.wake();
  }

  wake() {
    if (!this.raf && !this.destroyed) this.raf = requestAnimationFrame(this.loopFn);
  }

  settling() {
    if (this.scrubbing || this.dragging) return true;
    for (const rec of this.tiles.values()) {
      const v = rec.video;
      if (v && (v.seeking || !v.paused || rec.playPending)) return true;
    }
    return false;
  }

  active(t) {
    // Videos that take part at time t: loaded and not past their own end.
    const out = [];
    for (const rec of this.tiles.values()) {
      const v = rec.video;
      if (!v || rec.error || v.readyState < HAVE_METADATA) continue;
      if (pastEnd(v, t)) continue;
      out.push(rec);
    }
    return out;
  }

  tick(fromFrame = false) {
    if (this.destroyed) return;
    const nowMs = performance.now();
    this.lastTick = nowMs;
    if (!fromFrame) this.wake(); // an action or the interval: watch closely until settled
    const total = this.duration();
    let t = this.now();

    if (this.want && !(total > 0)) {
      // Every video went away (tiles back to status text): nothing to play.
      this.base = 0;
      this.want = false;
      this.running = false;
      this.setPhase("idle");
      this.updateButtons();
    }

    if (this.running && total > 0 && t >= total) {
      if (this.loop) {
        this.base = 0;
        this.running = false;
        this.setPhase("starting");
      } else {
        this.base = total;
        this.want = false;
        this.running = false;
        this.setPhase("idle");
        this.updateButtons();
      }
      t = this.now();
    }

    if (this.want && this.phase === "running") {
      // A genuinely stalled video (network, decoder) holds everyone rather than drifting.
      const stalled = this.active(t).some(
        (rec) =>
          rec.waitingSince &&
          !rec.seekStartedAt &&
          nowMs - rec.waitingSince > STALL_GRACE_MS &&
          rec.video.readyState < HAVE_FUTURE_DATA,
      );
      if (stalled) {
        this.base = t;
        this.running = false;
        this.setPhase("starting");
      }
    }

    if (this.want && this.phase === "starting") {
      const list = this.active(this.base);
      const ready = list.every(
        (rec) =>
          !rec.video.seeking &&
          rec.video.readyState >= HAVE_FUTURE_DATA &&
          Math.abs(rec.video.currentTime - this.base) < 0.002,
      );
      if (ready || nowMs - this.phaseSince > START_TIMEOUT_MS) {
        for (const rec of list) {
          rec.video.playbackRate = this.rate;
          this.startVideo(rec);
        }
        this.setPhase("launching");
      }
    }

    if (this.want && this.phase === "launching") {
      const list = this.active(this.base);
      const started = list.every(
        (rec) => !rec.video.paused && rec.video.currentTime > this.base + 1e-4,
      );
      if (started || nowMs - this.phaseSince > LAUNCH_TIMEOUT_MS) {
        // Anchor the clock where the videos really are, so no one starts out chasing it.
        const times = list.map((rec) => rec.video.currentTime).sort((a, b) => a - b);
        if (times.length) this.base = times[Math.floor((times.length - 1) / 2)];
        this.anchor = performance.now();
        this.running = true;
        this.setPhase("running");
        this.log("launched", +this.base.toFixed(3), times.map((x) => +x.toFixed(3)));
      }
    }

    if (this.running) this.followConsensus();
    t = this.now();
    for (const rec of this.tiles.values()) this.correct(rec, t);
    this.renderTime(t, total);
  }

  // The clock leads, but it also follows. When a tile is heard, its video is the reference:
  // sound must never skip, so that video is not corrected and the clock eases towards it
  // instead (it starts late while its audio output starts, and a busy machine delays it).
  // Otherwise the clock eases towards the median of the playing videos, so that a lag they
  // share is not fought one by one — mutual sync is what is seen.
  followConsensus() {
    const t = this.now();
    const heard = this.heard(t);
    if (heard) {
      this.base += (heard.video.currentTime - t) * HEARD_SLEW;
      return;
    }
    const errs = [];
    for (const rec of this.active(t)) {
      const v = rec.video;
      if (v.paused || v.seeking || rec.leadCheck) continue;
      errs.push(v.currentTime - t);
    }
    if (!errs.length) return;
    errs.sort((a, b) => a - b);
    const mid = errs.length >> 1;
    const median = errs.length % 2 ? errs[mid] : (errs[mid - 1] + errs[mid]) / 2;
    if (Math.abs(median) > 0.001) this.base += median * CONSENSUS_SLEW;
  }

  // The playing video whose sound is on, if it has sound at all.
  heard(t) {
    const rec = this.audioId == null ? null : this.tiles.get(this.audioId);
    const v = rec && rec.video;
    if (!v || v.muted || v.paused || v.seeking || rec.error || !hasAudio(v)) return null;
    if (v.readyState < HAVE_METADATA || pastEnd(v, t)) return null;
    return rec;
  }

  startVideo(rec) {
    const v = rec.video;
    if (!v.paused || rec.playPending) return;
    rec.playPending = true;
    this.log("play", rec.id, v.muted, +v.currentTime.toFixed(3));
    v.play()
      .catch((err) => {
        // Unmuted playback refused (no user gesture): carry on muted rather than stop.
        if (err && err.name === "NotAllowedError" && !v.muted) {
          v.muted = true;
          return v.play().catch(() => {});
        }
        return undefined;
      })
      .finally(() => {
        rec.playPending = false;
      });
  }

  log(...entry) {
    if (this.trace) this.trace.push([Math.round(performance.now()), ...entry]);
  }

  seekVideo(rec, target) {
    this.log("seek", rec.id, +this.now().toFixed(3), +rec.video.currentTime.toFixed(3), +target.toFixed(3));
    rec.seekTarget = target;
    rec.episode = null;
    rec.leadCheck = null;
    rec.seekStartedAt = performance.now();
    rec.video.currentTime = target;
  }

  correct(rec, t) {
    const v = rec.video;
    if (!v || rec.error || v.readyState < HAVE_METADATA) return;
    const dur = v.duration;
    if (!Number.isFinite(dur)) return;

    if (pastEnd(v, t)) {
      // Past its own end: hold the last frame while the longer ones carry on.
      if (!v.paused) v.pause();
      if (!v.seeking && v.currentTime < dur - 0.5 * this.frameDur() && rec.seekTarget !== dur) {
        this.seekVideo(rec, dur);
      }
      return;
    }

    if (!this.running) {
      if (!v.paused && this.phase !== "launching") v.pause();
      if (this.phase === "launching") return;
      if (v.playbackRate !== this.rate) v.playbackRate = this.rate;
      if (!v.seeking && Math.abs(v.currentTime - t) > 5e-4 && rec.seekTarget !== t) {
        this.seekVideo(rec, t);
      }
      return;
    }

    if (v.paused) {
      this.startVideo(rec);
      return;
    }
    if (v.seeking) return;
    const nowMs = performance.now();
    const err = v.currentTime - t;
    if (this.heard(t) === rec && Math.abs(err) < 0.5) {
      // The reference for the clock (see followConsensus): left alone.
      if (v.playbackRate !== this.rate) v.playbackRate = this.rate;
      rec.episode = null;
      return;
    }
    const threshold = hasAudio(v) ? AUDIO_SEEK_S : Math.max(1.25 * this.frameDur(), 0.045);
    // After a correcting seek, rate nudges get a moment to finish the job: seeking again at
    // once would only stall the video again (a seek storm), unless it is far off.
    const cooled = nowMs - rec.lastCorrection > SEEK_COOLDOWN_MS || Math.abs(err) > 0.5;
    if (Math.abs(err) > threshold && cooled) {
      const kind = hasAudio(v) ? "audio" : "silent";
      const target = Math.min(t + this.seekLead[kind] * this.rate, dur);
      v.playbackRate = this.rate;
      rec.lastCorrection = nowMs;
      this.seekVideo(rec, target);
      rec.leadCheck = { kind, at: Infinity };
      return;
    }
    if (rec.leadCheck && nowMs >= rec.leadCheck.at) {
      const kind = rec.leadCheck.kind;
      this.seekLead[kind] = clamp(this.seekLead[kind] - 0.7 * err, 0, 0.5);
      this.log("lead", rec.id, kind, +err.toFixed(3), +this.seekLead[kind].toFixed(3));
      rec.leadCheck = null;
    }
    rec.seekTarget = null;
    if (hasAudio(v)) this.nudgeEpisode(rec, err, nowMs);
    else {
      const nudge = clamp(-err * NUDGE_GAIN, -NUDGE_MAX, NUDGE_MAX);
      const wanted = this.rate * (1 + nudge);
      if (Math.abs(v.playbackRate - wanted) > 0.002 * this.rate) v.playbackRate = wanted;
    }
  }

  // A video with an audio track follows its audio clock, and in Chromium every pair of
  // playbackRate changes on such a video costs it ~20 ms of position, unpredictably (measured
  // here, both directions, however small the change; silent videos lose nothing), while two
  // clocks left alone never drift apart. So such a video is corrected rarely: only when off
  // by more than the deadband for a while, by one rate offset held just long enough for the
  // wanted correction plus that cost, then back to the rate and a pause to judge the result —
  // which also re-measures the cost (it varies by browser and machine).
  nudgeEpisode(rec, err, nowMs) {
    const v = rec.video;
    const ep = rec.episode;
    if (ep && !ep.done) {
      if (nowMs < ep.until) return;
      v.playbackRate = this.rate;
      this.log("episode-end", rec.id, +err.toFixed(3));
      ep.done = true;
      rec.settleUntil = nowMs + AUDIO_SETTLE_MS;
      return;
    }
    if (nowMs < rec.settleUntil) return;
    if (ep && ep.done) {
      const lost = ep.intended - (err - ep.errBefore);
      this.rateChangeCost = clamp(0.75 * this.rateChangeCost + 0.25 * lost, 0, 0.06);
      this.log("episode-judged", rec.id, +err.toFixed(3), +lost.toFixed(3), +this.rateChangeCost.toFixed(3));
      rec.episode = null;
    }
    if (v.playbackRate !== this.rate) v.playbackRate = this.rate;
    if (Math.abs(err) < AUDIO_DEADBAND_S) {
      rec.overSince = 0;
      return;
    }
    if (!rec.overSince) rec.overSince = nowMs;
    if (nowMs - rec.overSince < AUDIO_PERSIST_MS) return;
    rec.overSince = 0;
    const intended = -err + this.rateChangeCost; // media seconds to gain against the clock
    const offset = clamp(Math.abs(intended) / (AUDIO_EPISODE_MS / 1000), AUDIO_NUDGE_MIN, AUDIO_NUDGE_MAX);
    const hold = clamp((Math.abs(intended) / (offset * this.rate)) * 1000, 40, AUDIO_MAX_HOLD_MS);
    v.playbackRate = this.rate * (1 + Math.sign(intended) * offset);
    this.log("episode", rec.id, +err.toFixed(3), +intended.toFixed(3), Math.round(hold));
    rec.episode = {
      until: nowMs + hold,
      errBefore: err,
      intended: Math.sign(intended) * offset * this.rate * (hold / 1000),
      done: false,
    };
  }

  // ---------------------------------------------------------------- rendering

  updateButtons() {
    const playing = this.want;
    this.playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    setIcon(this.playBtn, playing ? "pause" : "play");
    this.root.classList.toggle("is-playing", playing);
  }

  // Runs every frame: only what changed is written, so a paused player costs next to nothing.
  renderTime(t, total) {
    const shown = Math.min(t, total || 0);
    if (!this.scrubbing) {
      const max = String(total || 0);
      if (this.scrub.max !== max) this.scrub.max = max;
      const value = String(shown);
      if (this.scrub.value !== value) this.scrub.value = value;
    }
    const empty = !(total > 0);
    if (this.playBtn.disabled !== empty) {
      for (const c of [this.playBtn, this.prevBtn, this.nextBtn, this.scrub]) c.disabled = empty;
    }
    const text = `${fmtTime(t)} / ${fmtTime(total)}`;
    if (this.timeEl.textContent !== text) {
      this.timeEl.textContent = text;
      this.scrub.setAttribute("aria-valuetext", `${fmtTime(t)} of ${fmtTime(total)}`);
      const pct = total > 0 ? (shown / total) * 100 : 0;
      this.scrub.style.setProperty("--fill", `${pct.toFixed(2)}%`);
    }
    for (const rec of this.tiles.values()) {
      const v = rec.video;
      const ended =
        Boolean(v) && Number.isFinite(v.duration) && t >= v.duration - 0.5 * this.frameDur();
      if (rec.el.classList.contains("is-ended") !== ended) rec.el.classList.toggle("is-ended", ended);
      const loading = Boolean(v) && !rec.error && v.readyState < 2;
      if (rec.el.classList.contains("is-loading") !== loading) {
        rec.el.classList.toggle("is-loading", loading);
      }
    }
  }

  render() {
    this.root.dataset.mode = this.mode;
    this.root.classList.toggle("is-focus", this.focusId !== null);
    this.gridBtn.setAttribute("aria-pressed", String(this.mode === "grid"));
    this.wipeBtn.setAttribute("aria-pressed", String(this.mode === "wipe"));
    this.wipePick.hidden = this.mode !== "wipe";
    this.hint.hidden = this.mode !== "grid";
    this.hint.textContent =
      this.focusId === null ? "Click a tile to focus it" : "Click the tile or press Esc to return";
    this.divider.hidden = this.mode !== "wipe";
    if (this.wipeA !== null) this.wipeASel.value = this.wipeA;
    if (this.wipeB !== null) this.wipeBSel.value = this.wipeB;
    this.setWipe(this.wipePos);
    for (const [id, rec] of this.tiles) {
      const d = rec.data;
      const hasVideo = Boolean(rec.video) && !rec.error;
      let hidden = false;
      if (this.mode === "wipe") hidden = id !== this.wipeA && id !== this.wipeB;
      else if (this.focusId !== null) hidden = id !== this.focusId;
      rec.el.classList.toggle("is-hidden", hidden);
      rec.el.classList.toggle("is-a", this.mode === "wipe" && id === this.wipeA);
      rec.el.classList.toggle("is-b", this.mode === "wipe" && id === this.wipeB);
      rec.el.classList.toggle("is-focused", this.focusId === id);
      rec.el.classList.toggle("has-video", hasVideo);
      rec.el.classList.toggle("is-failed", /^failed\b/i.test(d.status));
      rec.statusText.textContent = rec.error || d.status || "Waiting for a result";
      // Beside the label: the status when there is a video (e.g. "Succeeded · 12 s").
      rec.sub.textContent = hasVideo ? d.status : "";
      rec.sub.hidden = !(hasVideo && d.status);
      rec.speaker.hidden = !hasVideo;
    }
  }

  layout() {
    const stage = this.stage;
    const width = stage.clientWidth;
    if (!width) return;
    const gap = 8;
    const ar = this.aspect();
    this.root.style.setProperty("--ar", String(ar));
    const single = this.mode === "wipe" || this.focusId !== null;
    const n = single ? 1 : this.order.length;
    const limit = this.maxHeight ?? Math.max(260, Math.round(window.innerHeight * 0.72));
    let best = { cols: 1, w: width };
    for (const cols of this.columnChoices(n, width)) {
      const rows = Math.max(1, Math.ceil(n / cols));
      const colW = (width - gap * (cols - 1)) / cols;
      // One column on a narrow screen stacks and scrolls: only each tile is bounded.
      const rowH = cols === 1 && n > 1 ? limit : (limit - gap * (rows - 1)) / rows;
      const w = Math.floor(Math.max(80, Math.min(colW, rowH * ar)));
      if (w > best.w || best.cols === 1) best = { cols, w };
    }
    stage.style.gridTemplateColumns = `repeat(${best.cols}, ${best.w}px)`;
    this.root.dataset.cols = String(best.cols);
  }

  columnChoices(n, width) {
    if (n <= 1 || width < 520) return [1];
    if (n === 2) return [2];
    if (n <= 4) return [2, 4];
    if (n <= 6) return width < 760 ? [2] : [3];
    if (n <= 9) return [3];
    return [4];
  }

  aspect() {
    // The driving clip sets the tile shape; others letterbox inside it.
    const ids = [...this.order].sort(
      (a, b) => Number(this.tiles.get(b).data.reference) - Number(this.tiles.get(a).data.reference),
    );
    for (const id of ids) {
      const v = this.tiles.get(id).video;
      if (v && v.videoWidth > 0 && v.videoHeight > 0) {
        return clamp(v.videoWidth / v.videoHeight, 9 / 16, 21 / 9);
      }
    }
    return 16 / 9;
  }

  destroy() {
    this.destroyed = true;
    cancelAnimationFrame(this.raf);
    clearInterval(this.interval);
    if (this.resizeObs) this.resizeObs.disconnect();
    for (const off of this.unbinders || []) off();
    for (const rec of this.tiles.values()) this.setVideo(rec, null);
    this.root.remove();
  }
}

export default function (component) {
  const { parentElement, data } = component;
  let player = INSTANCES.get(parentElement);
  if (!player || player.destroyed) {
    player = new SyncedPlayer(parentElement);
    INSTANCES.set(parentElement, player);
  }
  const generation = player.update(data || {});
  // Streamlit keeps only the newest cleanup and calls it on unmount; a cleanup from an older
  // call (a rerun raced a slow first mount) must not tear down the live player.
  return () => {
    if (player.generation === generation && !player.destroyed) {
      player.destroy();
      INSTANCES.delete(parentElement);
    }
  };
}
