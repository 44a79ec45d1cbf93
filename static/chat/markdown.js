/*
 * NeonPro AI Chat: Markdown answers, rendered safely and incrementally.
 *
 * Answers are Markdown. They are parsed by marked and the result is cleaned by
 * DOMPurify before it reaches the page (both vendored under static/vendor).
 * Two layers, on purpose:
 *   1. marked's `html` renderer is replaced so that raw HTML in the Markdown
 *      (from the model, or a re-identified value that happens to contain
 *      markup) is shown as text, never parsed as HTML;
 *   2. DOMPurify then removes anything executable that Markdown itself could
 *      produce (javascript: links and the like) and forbids images, forms and
 *      styles outright.
 * Links open in a new tab with rel="noopener noreferrer".
 *
 * While an answer streams, only its last block is re-rendered: finished blocks
 * (a paragraph followed by another block, a closed code fence…) are rendered
 * once and kept, and repaints are throttled to one per animation frame, so a
 * long answer costs the same per token as a short one.
 */
(function () {
  "use strict";

  var marked = window.marked;
  var DOMPurify = window.DOMPurify;

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  marked.use({
    gfm: true,
    breaks: true,
    renderer: {
      // Raw HTML blocks and inline tags: shown as the text they are.
      html: function (token) {
        return escapeHtml(token.text);
      },
    },
  });

  var PURIFY_OPTIONS = {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe",
      "object", "embed", "svg", "math", "video", "audio", "picture", "source"],
    FORBID_ATTR: ["style", "id", "name", "class"],
  };

  DOMPurify.addHook("afterSanitizeAttributes", function (element) {
    if (element.tagName === "A") {
      if (element.hasAttribute("href")) {
        element.setAttribute("target", "_blank");
        element.setAttribute("rel", "noopener noreferrer");
      } else {
        element.removeAttribute("target");
      }
    }
  });

  /** Markdown text -> a sanitised DocumentFragment. */
  function render(text) {
    return DOMPurify.sanitize(marked.parse(text || ""), PURIFY_OPTIONS);
  }

  function renderTokens(tokens, links) {
    var list = tokens.slice();
    list.links = links || {};
    return DOMPurify.sanitize(marked.parser(list), PURIFY_OPTIONS);
  }

  /*
   * Streams Markdown into `container`. Call `update(fullText)` as text grows
   * (cheap: it only schedules a frame) and `finish(fullText)` at the end, which
   * renders the whole answer once more so that anything that depends on later
   * text (reference links) comes out right.
   */
  function StreamRenderer(container, onRender) {
    this.container = container;
    this.onRender = onRender || null;
    this.text = "";
    this.stableLength = 0; // characters of `text` already rendered as finished blocks
    this.live = null; // the element holding the still-growing last block(s)
    this.frame = 0;
    this.renders = 0;
  }

  StreamRenderer.prototype.update = function (text) {
    this.text = text;
    if (!this.frame) {
      var self = this;
      this.frame = window.requestAnimationFrame(function () {
        self.frame = 0;
        self.paint();
      });
    }
  };

  StreamRenderer.prototype.paint = function () {
    this.renders += 1;
    if (!this.live) {
      this.container.replaceChildren();
      this.live = document.createElement("div");
      this.live.className = "md-live";
      this.container.append(this.live);
    }
    var tail = this.text.slice(this.stableLength);
    var tokens = marked.lexer(tail);
    var last = tokens.length - 1;
    while (last >= 0 && tokens[last].type === "space") {
      last -= 1;
    }
    // Every block before the last non-blank one is finished: render it for good.
    if (last > 0) {
      var done = tokens.slice(0, last);
      var doneLength = done.reduce(function (sum, token) { return sum + token.raw.length; }, 0);
      this.container.insertBefore(renderTokens(done, tokens.links), this.live);
      this.stableLength += doneLength;
      tokens = tokens.slice(last);
    }
    this.live.replaceChildren(renderTokens(tokens, tokens.links));
    if (this.onRender) {
      this.onRender();
    }
  };

  StreamRenderer.prototype.finish = function (text) {
    if (this.frame) {
      window.cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    this.text = text;
    this.container.replaceChildren(render(text));
    this.live = null;
    this.stableLength = 0;
    if (this.onRender) {
      this.onRender();
    }
  };

  StreamRenderer.prototype.reset = function () {
    if (this.frame) {
      window.cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    this.text = "";
    this.stableLength = 0;
    this.live = null;
    this.container.replaceChildren();
  };

  window.NeonproMarkdown = { render: render, StreamRenderer: StreamRenderer };
})();
