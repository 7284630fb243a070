// The instance page's interactive console (templates/compute/partials/terminal.html): xterm.js wired to the
// machine's serial console over a WebSocket. Binary frames carry the console's bytes both ways; text frames from
// the server are notices ({"type": "notice", "message": …, "final": …}).
(function () {
  "use strict";

  // xterm.js writes its computed styles into <style> elements, which the site's Content-Security-Policy
  // (style-src 'self') refuses. On this page such elements become inert placeholders whose text goes into a
  // constructed style sheet instead: CSSOM, which the policy allows.
  function installStyleShim() {
    if (!("adoptedStyleSheets" in document) || document.createElement.hangarShim) {
      return;
    }
    var create = document.createElement;
    var shimmed = function (tagName, options) {
      if (String(tagName).toLowerCase() !== "style") {
        return create.call(this, tagName, options);
      }
      var placeholder = create.call(this, "template");
      var sheet = new CSSStyleSheet();
      var text = "";
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
      Object.defineProperty(placeholder, "textContent", {
        get: function () { return text; },
        set: function (value) { text = String(value); sheet.replaceSync(text); }
      });
      var remove = placeholder.remove;
      placeholder.remove = function () {
        document.adoptedStyleSheets = document.adoptedStyleSheets.filter(function (s) { return s !== sheet; });
        remove.call(placeholder);
      };
      return placeholder;
    };
    shimmed.hangarShim = true;
    document.createElement = shimmed;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function setUp(card) {
    var status = card.querySelector("[data-terminal-status]");
    var button = card.querySelector("[data-terminal-connect]");
    var screen = card.querySelector("[data-terminal]");
    var terminal = null;
    var fit = null;
    var socket = null;
    var finalNotice = false;
    var retries = 0;

    function say(text, live) {
      status.textContent = text;
      status.classList.toggle("terminal-status-live", Boolean(live));
    }

    function notice(message) {
      terminal.write("\r\n\x1b[1;33m[" + message + "]\x1b[0m\r\n");
    }

    function ensureTerminal() {
      if (terminal) {
        return;
      }
      installStyleShim();
      screen.hidden = false;
      terminal = new window.Terminal({
        cursorBlink: true,
        fontFamily: getComputedStyle(document.documentElement).getPropertyValue("--mono") || "monospace",
        fontSize: 14,
        lineHeight: 1.2, // room for underscores and descenders below the baseline
        scrollback: 2000,
        theme: { background: "#0d1117", foreground: "#d1d7e0", cursor: "#7aa2ff" }
      });
      fit = new window.FitAddon.FitAddon();
      terminal.loadAddon(fit);
      terminal.open(screen);
      fit.fit();
      window.addEventListener("resize", function () { fit.fit(); });
      terminal.onData(function (data) {
        if (socket && socket.readyState === WebSocket.OPEN) {
          socket.send(data);
        }
      });
    }

    function disconnect() {
      if (socket) {
        finalNotice = true;
        socket.close(1000);
      }
    }

    function connect() {
      ensureTerminal();
      finalNotice = false;
      say("Connecting…");
      button.disabled = true;
      fetch(card.getAttribute("data-terminal-ticket-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() }
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status === 403 ? "your role does not allow it" : "HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (grant) {
          var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
          socket = new WebSocket(scheme + window.location.host + grant.url + "?ticket=" + encodeURIComponent(grant.ticket));
          socket.binaryType = "arraybuffer";
          socket.onopen = function () {
            retries = 0;
            say("Connected", true);
            button.textContent = "Disconnect";
            button.disabled = false;
            terminal.focus();
          };
          socket.onmessage = function (event) {
            if (typeof event.data !== "string") {
              terminal.write(new Uint8Array(event.data));
              return;
            }
            var message = JSON.parse(event.data);
            if (message.type === "notice") {
              notice(message.message);
              finalNotice = finalNotice || message.final;
              if (!message.final) {
                socket.send("\r"); // a fresh prompt, as pressing Enter at a serial terminal gives
              }
            }
          };
          socket.onclose = function (event) {
            socket = null;
            button.textContent = "Reconnect";
            button.disabled = false;
            // 1012: the web server restarted (a worker recycled); 1006: the connection dropped. Try again quietly.
            if (!finalNotice && (event.code === 1012 || event.code === 1006) && retries < 3) {
              retries += 1;
              say("Reconnecting…");
              window.setTimeout(connect, 1000 * retries);
              return;
            }
            say("Not connected");
          };
        })
        .catch(function (error) {
          say("Not connected");
          button.disabled = false;
          button.textContent = "Connect";
          notice("The console cannot be opened: " + error.message);
        });
    }

    button.addEventListener("click", function () {
      if (socket) {
        disconnect();
        return;
      }
      button.disabled = true;
      say("Loading the console…");
      loadTerminal(card)
        .then(connect)
        .catch(function () {
          button.disabled = false;
          say("The console could not be loaded; reload the page and try again.");
        });
    });
  }

  // xterm.js is half a megabyte: it is fetched when someone connects, not with every instance page.
  function loadTerminal(card) {
    return window.Hangar.load(
      [card.getAttribute("data-xterm-js"), card.getAttribute("data-xterm-fit-js")],
      [card.getAttribute("data-xterm-css")]
    );
  }

  function start() {
    var card = document.getElementById("instance-terminal");
    if (card) {
      setUp(card);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
