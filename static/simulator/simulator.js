/* The local LINE simulator's page: renders what the bot sent (as LINE would) and turns taps and typing
 * into actions the server posts to the webhook as signed LINE events. Vanilla JS, nothing external.
 * Words shown to people come from the template (#sim-texts); this file holds none. */
(function () {
  "use strict";

  var T = JSON.parse(document.getElementById("sim-texts").textContent);
  var CONFIG = JSON.parse(document.getElementById("sim-config").textContent);
  var OFFICES = CONFIG.offices;
  var POLL_MS = 1000;
  /* Stickers are drawn with symbols every Japanese font has: no picture is loaded from LINE. */
  var STICKERS = [["446", "1988", "\u263A"], ["446", "1989", "\u2605"], ["446", "1990", "\u266A"],
                  ["446", "1991", "\u2665"], ["446", "1992", "\u2713"], ["446", "1993", "\u273F"],
                  ["446", "1994", "\u2600"], ["446", "1995", "\u2602"]];
  var TEXT_SIZES = {xxs: 11, xs: 13, sm: 14, md: 16, lg: 19, xl: 22, xxl: 29, "3xl": 35, "4xl": 48, "5xl": 74};
  var SPACES = {none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20};
  var RADII = {none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20};
  var BORDERS = {none: 0, light: 0.5, normal: 1, medium: 2, "semi-bold": 3, bold: 4};
  var IMAGE_SIZES = {xxs: 40, xs: 60, sm: 80, md: 100, lg: 120, xl: 140, xxl: 160, "3xl": 180, "4xl": 200, "5xl": 240};

  var state = {
    office: null, user: null, users: [],
    cursor: {user: 0, staff: 0},
    last: {user: null, staff: null},     // the last message shown in each chat (for quick replies)
    generation: 0,                       // bumps when a chat is cleared: late poll answers are dropped
    polling: false, pollAgain: false, richmenuId: undefined, richmenuLoading: false, loadingUntil: 0
  };

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] === undefined ? "" : values[k]; });
  }
  function toast(message) {
    var box = $("toast");
    box.textContent = message || "";
    clearTimeout(toast.timer);
    if (message) toast.timer = setTimeout(function () { box.textContent = ""; }, 6000);
  }

  // -- talking to the server -------------------------------------------------------------------------
  /* What a failed call means to the person at the page: the server is down, the office or user is gone
   * (the database was made again), the call was refused, or the server failed (its log says why); anything
   * else is this page's own fault, kept in the console for whoever fixes it. */
  function failure(error) {
    var status = error && error.status;
    if (error && error.unreachable) return T.errors.network;
    if (!status) {
      if (window.console) console.error(error);
      return T.errors.page;
    }
    if (status === 404) return T.errors.notFound;
    return fmt(status >= 500 ? T.errors.server : T.errors.refused, {status: status});
  }
  function showFailure(error) { toast(failure(error)); }
  function api(method, url, body) {
    var options = {method: method, headers: {"Accept": "application/json"}, credentials: "same-origin"};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).catch(function () {
      var error = new Error("unreachable");
      error.unreachable = true;
      throw error;
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(String(response.status));
          error.status = response.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  /* Resolves to whether the server took the action (the webhook's answer aside). */
  function send(pane, action) {
    if (pane === "user" && !state.user) { toast(T.noUsers); return Promise.resolve(false); }
    hideQuick(pane);
    var chat = pane === "staff" ? "staff" : state.user;
    return api("POST", "/simulator/send", {office: state.office, chat: chat, action: action})
      .then(function (data) {
        if (data.webhook_status !== 200) toast(fmt(T.webhookError, {status: data.webhook_status}));
        return true;
      })
      .catch(function (error) { showFailure(error); return false; })
      .then(function (taken) { poll(); return taken; });
  }

  // -- actions (what a tap does, as on LINE) --------------------------------------------------------
  function doAction(action, pane) {
    if (!action) return;
    switch (action.type) {
      case "postback":
        send(pane, {type: "postback", data: action.data, displayText: action.displayText || null});
        if (action.inputOption === "openKeyboard") inputOf(pane).focus();
        if (action.inputOption === "openRichMenu") setMenuOpen(true);
        if (action.inputOption === "closeRichMenu") setMenuOpen(false);
        break;
      case "message":
        send(pane, {type: "text", text: action.text});
        break;
      case "uri":
        openBrowser(action.uri);
        break;
      case "datetimepicker":
        openPicker(action, pane);
        break;
      case "clipboard":
        if (navigator.clipboard) navigator.clipboard.writeText(action.clipboardText || "");
        toast(T.copied);
        break;
      default:
        toast(T.unsupportedAction);
    }
  }
  function inputOf(pane) { return pane === "staff" ? $("group-input") : $("user-input"); }

  function actionButton(action, pane, cls) {
    var button = el("button", cls || "", (action && (action.label || action.text)) || "");
    button.type = "button";
    button.addEventListener("click", function () { doAction(action, pane); });
    return button;
  }
  function clickable(node, action, pane) {
    if (!action) return node;
    node.classList.add("fx-action");
    node.setAttribute("role", "button");
    node.tabIndex = 0;
    if (action.label) node.setAttribute("aria-label", action.label);
    node.addEventListener("click", function (event) { event.stopPropagation(); doAction(action, pane); });
    node.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); doAction(action, pane); }
    });
    return node;
  }

  // -- the in-app browser (URI actions, links in text) -----------------------------------------------
  function openBrowser(uri) {
    if (!/^https?:\/\//i.test(uri)) {
      if (/^line:\/\//i.test(uri)) return;
      toast(T.unsupportedAction);
      return;
    }
    if (lineLink(uri)) return;
    $("browser-title").textContent = uri;
    $("browser-newtab").href = uri;
    $("browser-frame").src = sameOrigin(uri);
    $("browser").hidden = false;
    $("browser-close").focus();
  }
  /* The bot links PUBLIC_BASE_URL; opened here it must be this page's origin, or its pages refuse the frame. */
  function sameOrigin(uri) {
    var base = CONFIG.publicBaseUrl;
    if (base && uri.indexOf(base + "/") === 0) return location.origin + uri.slice(base.length);
    return uri;
  }
  function closeBrowser() {
    $("browser").hidden = true;
    $("browser-frame").src = "about:blank";
  }
  /* https://line.me/R/oaMessage/<id>/?<text> goes back to the chat with the text ready to send. */
  function lineLink(uri) {
    var match = /^https:\/\/line\.me\/R\/oaMessage\/[^/]+\/?\?(.*)$/.exec(uri);
    if (match) {
      closeBrowser();
      try { $("user-input").value = decodeURIComponent(match[1]); } catch (e) { $("user-input").value = match[1]; }
      $("user-input").focus();
      return true;
    }
    if (/^https:\/\/line\.me\/R\//.test(uri)) { closeBrowser(); return true; }
    return false;
  }
  $("browser-frame").addEventListener("load", function () {
    var doc;
    try { doc = $("browser-frame").contentDocument; } catch (e) { return; }
    if (!doc) return;
    try { $("browser-title").textContent = doc.location.href === "about:blank" ? "" : doc.location.href; } catch (e) { /* cross-origin */ }
    doc.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[href]");
      if (link && lineLink(link.href)) event.preventDefault();
    }, true);
  });
  $("browser-close").addEventListener("click", closeBrowser);

  // -- the datetime picker ---------------------------------------------------------------------------
  var picking = null;
  function openPicker(action, pane) {
    var mode = action.mode || "datetime";
    var input = $("picker-input");
    input.type = mode === "datetime" ? "datetime-local" : mode;
    input.value = action.initial || "";
    input.min = action.min || "";
    input.max = action.max || "";
    $("picker-title").textContent = T.picker[mode] || "";
    picking = {action: action, pane: pane, mode: mode};
    $("picker").returnValue = "";
    $("picker").showModal();
  }
  $("picker").addEventListener("close", function () {
    var chosen = $("picker").returnValue === "ok" ? $("picker-input").value : "";
    if (picking && chosen) {
      var params = {};
      params[picking.mode] = chosen;
      send(picking.pane, {type: "postback", data: picking.action.data, params: params});
    }
    picking = null;
  });

  // -- rendering: text ---------------------------------------------------------------------------------
  var URL_RE = /https?:\/\/[^\s<>"'）」』】]+/g;
  function linkedText(node, text) {
    var last = 0, match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      if (match.index > last) node.appendChild(document.createTextNode(text.slice(last, match.index)));
      var uri = match[0];
      var link = el("a", "", uri);
      link.href = uri;
      link.addEventListener("click", function (u) { return function (event) { event.preventDefault(); openBrowser(u); }; }(uri));
      node.appendChild(link);
      last = match.index + uri.length;
    }
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }
  function textBubble(message) {
    var text = message.text || "";
    if (message.type === "text" && Array.isArray(message.emojis) && message.emojis.length) {
      var marks = message.emojis.map(function (e) { return e.index; });
      var bubble = el("div", "bubble");
      var start = 0;
      marks.sort(function (a, b) { return a - b; }).forEach(function (index) {
        linkedText(bubble, text.slice(start, index));
        bubble.appendChild(el("span", "emoji", "\u263A"));
        start = index + 1;
      });
      return linkedText(bubble, text.slice(start));
    }
    if (message.type === "textV2" && message.substitution) {
      text = text.replace(/\{(\w+)\}/g, function (all, key) {
        var sub = message.substitution[key];
        if (!sub) return all;
        return sub.type === "mention" ? "@" + ((sub.mentionee && sub.mentionee.userId) || "all") : "\u263A";
      });
    }
    return linkedText(el("div", "bubble"), text);
  }

  // -- rendering: templates ------------------------------------------------------------------------
  function card(column, pane, confirm) {
    var box = clickable(el("div", "card" + (confirm ? " confirm" : "")), column.defaultAction, pane);
    if (column.thumbnailImageUrl) box.appendChild(placeholder(T.image, "thumb"));
    if (column.title) box.appendChild(el("div", "card-title", column.title));
    if (column.text) box.appendChild(el("div", "card-text", column.text));
    var actions = el("div", "card-actions");
    (column.actions || []).forEach(function (action) { actions.appendChild(actionButton(action, pane)); });
    box.appendChild(actions);
    return box;
  }
  function template(message, pane) {
    var tpl = message.template || {};
    if (tpl.type === "buttons") return card(tpl, pane, false);
    if (tpl.type === "confirm") return card({text: tpl.text, actions: tpl.actions}, pane, true);
    var scroller = el("div", "scroller");
    (tpl.columns || []).forEach(function (column) {
      if (tpl.type === "image_carousel") {
        var box = el("div", "card");
        box.appendChild(placeholder(T.image, "thumb"));
        var actions = el("div", "card-actions");
        actions.appendChild(actionButton(column.action, pane));
        box.appendChild(actions);
        scroller.appendChild(box);
      } else {
        scroller.appendChild(card(column, pane, false));
      }
    });
    return scroller;
  }

  // -- rendering: Flex --------------------------------------------------------------------------------
  function px(value, table) {
    if (value === undefined || value === null) return null;
    if (table && Object.prototype.hasOwnProperty.call(table, value)) return table[value] + "px";
    return String(value);
  }
  function applyBox(node, c) {
    var pad = px(c.paddingAll, SPACES);
    if (pad) node.style.padding = pad;
    [["paddingTop", "paddingTop"], ["paddingBottom", "paddingBottom"], ["paddingStart", "paddingLeft"],
     ["paddingEnd", "paddingRight"]].forEach(function (pair) {
      var value = px(c[pair[0]], SPACES);
      if (value) node.style[pair[1]] = value;
    });
    if (c.backgroundColor) node.style.backgroundColor = c.backgroundColor;
    if (c.borderColor) node.style.borderColor = c.borderColor;
    if (c.borderWidth) { node.style.borderStyle = "solid"; node.style.borderWidth = px(c.borderWidth, BORDERS); }
    if (c.cornerRadius) node.style.borderRadius = px(c.cornerRadius, RADII);
    if (c.justifyContent) node.style.justifyContent = c.justifyContent;
    if (c.alignItems) node.style.alignItems = c.alignItems;
    ["width", "height", "maxWidth", "maxHeight"].forEach(function (key) { if (c[key]) node.style[key] = c[key]; });
    if (c.position === "absolute") {
      node.style.position = "absolute";
      [["offsetTop", "top"], ["offsetBottom", "bottom"], ["offsetStart", "left"], ["offsetEnd", "right"]]
        .forEach(function (pair) { if (c[pair[0]]) node.style[pair[1]] = px(c[pair[0]], SPACES); });
    }
  }
  function placeChild(node, c, parentLayout, index, spacing) {
    var flex = c.flex;
    if (parentLayout === "horizontal" || parentLayout === "baseline") {
      flex = flex === undefined ? 1 : flex;
      node.style.flex = flex + " " + (flex ? 1 : 0) + " 0";
    } else {
      flex = flex === undefined ? 0 : flex;
      node.style.flex = flex + " " + (flex ? 1 : 0) + " auto";
    }
    var margin = c.margin !== undefined ? px(c.margin, SPACES) : (index > 0 ? spacing : null);
    if (margin) {
      if (parentLayout === "vertical") node.style.marginTop = margin; else node.style.marginLeft = margin;
    }
    if (c.gravity && parentLayout !== "vertical") {
      node.style.alignSelf = {top: "flex-start", center: "center", bottom: "flex-end"}[c.gravity] || "";
    }
    if (c.align && c.type !== "text") {
      node.style.alignSelf = {start: "flex-start", center: "center", end: "flex-end"}[c.align] || "";
    }
  }
  function textStyle(node, c) {
    if (c.size) node.style.fontSize = px(c.size, TEXT_SIZES);
    if (c.weight === "bold") node.style.fontWeight = "bold";
    if (c.color) node.style.color = c.color;
    if (c.style === "italic") node.style.fontStyle = "italic";
    if (c.decoration && c.decoration !== "none") node.style.textDecoration = c.decoration;
  }
  function flexText(c, pane) {
    var node = el("div", "fx-text" + (c.wrap ? " wrap" : ""));
    textStyle(node, c);
    if (c.align) node.style.textAlign = {start: "left", end: "right", center: "center"}[c.align] || "";
    if (c.lineSpacing) node.style.lineHeight = "calc(1.4em + " + c.lineSpacing + ")";
    if (c.maxLines) {
      node.style.display = "-webkit-box";
      node.style.webkitBoxOrient = "vertical";
      node.style.webkitLineClamp = String(c.maxLines);
      node.style.whiteSpace = "pre-wrap";
    }
    if (Array.isArray(c.contents) && c.contents.length) {
      c.contents.forEach(function (span) {
        var part = el("span", "", span.text || "");
        textStyle(part, span);
        node.appendChild(part);
      });
    } else {
      linkedText(node, c.text || "");
    }
    return clickable(node, c.action, pane);
  }
  function flexImage(c, pane) {
    var node = el("div", "fx-image");
    var ratio = String(c.aspectRatio || "1:1").split(":");
    var w = parseFloat(ratio[0]) || 1, h = parseFloat(ratio[1]) || 1;
    node.style.paddingTop = (100 * h / w) + "%";
    var size = c.size || "md";
    if (size !== "full") node.style.width = IMAGE_SIZES[size] ? IMAGE_SIZES[size] + "px" : size;
    if (c.backgroundColor) node.style.backgroundColor = c.backgroundColor;
    if (typeof c.url === "string" && c.url.indexOf(location.origin + "/") === 0) {
      var img = el("img");
      img.alt = "";
      img.src = c.url;
      if (c.aspectMode === "fit") img.style.objectFit = "contain";
      node.appendChild(img);
    } else {
      node.appendChild(placeholder(T.image));
    }
    return clickable(node, c.action, pane);
  }
  function flexNode(c, pane, parentLayout, index, spacing) {
    var node;
    switch (c.type) {
      case "box":
        node = el("div", "fx-box " + (c.layout || "vertical"));
        applyBox(node, c);
        var inner = px(c.spacing, SPACES);
        (c.contents || []).forEach(function (child, i) {
          node.appendChild(flexNode(child, pane, c.layout || "vertical", i, inner));
        });
        clickable(node, c.action, pane);
        break;
      case "text": node = flexText(c, pane); break;
      case "span": node = el("span", "", c.text || ""); textStyle(node, c); break;
      case "button":
        node = el("div", "fx-button-wrap");
        var button = actionButton(c.action, pane, "fx-button " + (c.style || "link") + (c.height === "sm" ? " sm" : ""));
        if (c.color) {
          if ((c.style || "link") === "link") button.style.color = c.color; else button.style.backgroundColor = c.color;
        }
        node.appendChild(button);
        break;
      case "separator":
        node = el("hr", "fx-separator");
        if (c.color) node.style.borderTopColor = c.color;
        break;
      case "image": node = flexImage(c, pane); break;
      case "video": node = placeholder(T.video); break;
      case "icon":
        node = el("span", "fx-icon");
        if (c.size) node.style.fontSize = px(c.size, TEXT_SIZES);
        break;
      case "filler": case "spacer": node = el("div", "fx-filler"); break;
      default: node = el("div", "", "");
    }
    if (parentLayout) placeChild(node, c, parentLayout, index, spacing);
    return node;
  }
  function bubble(b, pane) {
    var node = el("div", "fx-bubble" + (b.size ? " size-" + b.size : ""));
    var styles = b.styles || {};
    var first = true;
    ["header", "hero", "body", "footer"].forEach(function (part) {
      var content = b[part];
      if (!content) return;
      var block = el("div", "fx-block " + part);
      var style = styles[part] || {};
      if (style.backgroundColor) block.style.backgroundColor = style.backgroundColor;
      if (style.separator && !first) {
        block.classList.add("sep");
        if (style.separatorColor) block.style.borderTopColor = style.separatorColor;
      }
      if (content.type === "box") {
        var box = flexNode(content, pane, null, 0, null);
        box.style.flex = "1 1 auto";
        block.appendChild(box);
      } else {
        block.appendChild(flexNode(content, pane, null, 0, null));
      }
      node.appendChild(block);
      first = false;
    });
    return clickable(node, b.action, pane);
  }
  function flex(message, pane) {
    var contents = message.contents || {};
    if (contents.type === "carousel") {
      var scroller = el("div", "scroller");
      (contents.contents || []).forEach(function (b) { scroller.appendChild(bubble(b, pane)); });
      return scroller;
    }
    return bubble(contents, pane);
  }

  // -- rendering: the rest -----------------------------------------------------------------------------
  function placeholder(label, cls) { return el("div", "placeholder" + (cls ? " " + cls : ""), label); }
  function sticker(message) {
    var known = STICKERS.filter(function (s) { return s[1] === String(message.stickerId); })[0];
    var node = el("div", "bubble sticker", known ? known[2] : "\u263A");
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", T.sticker);
    node.appendChild(el("small", "", T.sticker + " " + (message.packageId || "") + "/" + (message.stickerId || "")));
    return node;
  }
  function locationCard(message) {
    var box = el("div", "card");
    box.appendChild(placeholder(T.map, "thumb"));
    box.appendChild(el("div", "card-title", message.title || T.location));
    box.appendChild(el("div", "card-text", message.address || ""));
    return box;
  }
  function imagemap(message, pane) {
    var box = el("div", "card");
    box.appendChild(placeholder(T.imagemap + ": " + (message.altText || ""), "thumb"));
    var actions = el("div", "card-actions");
    (message.actions || []).forEach(function (area) {
      var action = area.type === "uri" ? {type: "uri", uri: area.linkUri, label: area.label || area.linkUri}
                                       : {type: "message", text: area.text, label: area.label || area.text};
      actions.appendChild(actionButton(action, pane));
    });
    box.appendChild(actions);
    return box;
  }
  function renderMessage(message, pane) {
    switch (message.type) {
      case "text": case "textV2": return textBubble(message);
      case "sticker": return sticker(message);
      case "image": return placeholder(T.image);
      case "video": return placeholder(T.video);
      case "audio": return placeholder(T.audio);
      case "file": return placeholder(T.file);
      case "location": return locationCard(message);
      case "imagemap": return imagemap(message, pane);
      case "template": return template(message, pane);
      case "flex": return flex(message, pane);
      default: return placeholder(T.unknownMessage);
    }
  }

  // -- the chats ----------------------------------------------------------------------------------------
  function chatOf(pane) { return pane === "staff" ? $("group-chat") : $("user-chat"); }
  function quickOf(pane) { return pane === "staff" ? $("group-quick") : $("user-quick"); }
  function hideQuick(pane) { quickOf(pane).replaceChildren(); }

  function officeInitial() {
    var office = OFFICES.filter(function (o) { return o.id === state.office; })[0];
    return office ? office.name.slice(-2, -1) || office.name.slice(0, 1) : "";
  }

  function appendRow(pane, row) {
    var chat = chatOf(pane);
    var typing = chat.querySelector(".typing");
    if (row.sender === "system") {
      if (row.kind === "loading") {
        if (pane === "user") showTyping(row.message.seconds || 5);
        return;
      }
      var event = row.message && row.message.event;
      chat.appendChild(el("div", "system", (T.events && T.events[event]) || event || ""));
      state.last[pane] = row;
      return;
    }
    if (row.sender === "bot" && typing) typing.remove();
    var line = el("div", "row " + (row.sender === "bot" ? "bot" : "user") + (row.delivered ? "" : " undelivered"));
    line.dataset.id = row.id;
    if (row.sender === "bot") line.appendChild(el("div", "avatar", officeInitial()));
    line.appendChild(renderMessage(row.message || {}, pane));
    var meta = el("div", "meta");
    meta.appendChild(el("div", "time", row.at));
    if (!row.delivered) meta.appendChild(el("div", "undelivered-note", T.notDelivered));
    line.appendChild(meta);
    chat.appendChild(line);
    state.last[pane] = row;
  }

  function showTyping(seconds) {
    var chat = chatOf("user");
    if (!chat.querySelector(".typing")) chat.appendChild(el("div", "typing", T.loading));
    state.loadingUntil = Date.now() + seconds * 1000;
  }

  function renderQuick(pane) {
    var quick = quickOf(pane);
    quick.replaceChildren();
    var last = state.last[pane];
    if (!last || last.sender !== "bot" || !last.message || !last.message.quickReply) return;
    (last.message.quickReply.items || []).forEach(function (item) {
      quick.appendChild(actionButton(item.action, pane));
    });
  }

  function showRows(pane, rows) {
    if (!rows.length) return;
    var chat = chatOf(pane);
    rows.forEach(function (row) {
      appendRow(pane, row);
      state.cursor[pane] = Math.max(state.cursor[pane], row.id);
    });
    renderQuick(pane);
    chat.scrollTop = chat.scrollHeight;
  }

  function resetChat(pane) {
    chatOf(pane).replaceChildren();
    hideQuick(pane);
    state.cursor[pane] = 0;
    state.last[pane] = null;
    state.generation += 1;
  }

  // -- polling ------------------------------------------------------------------------------------------
  function poll() {
    if (!state.office) return;
    if (state.polling) { state.pollAgain = true; return; }
    state.polling = true;
    var office = state.office, user = state.user || "", generation = state.generation;
    var url = "/simulator/poll?office=" + encodeURIComponent(office) + "&user=" + encodeURIComponent(user) +
      "&after=" + state.cursor.user + "&group_after=" + state.cursor.staff;
    api("GET", url).then(function (data) {
      if (generation !== state.generation) return;  // the chat was switched or cleared meanwhile
      $("now").textContent = data.now_label;
      showRows("user", data.user || []);
      showRows("staff", data.group || []);
      var typing = $("user-chat").querySelector(".typing");
      if (typing && Date.now() > state.loadingUntil) typing.remove();
      if (!state.richmenuLoading && data.richmenu_id !== state.richmenuId) loadRichMenu();
    }).catch(showFailure)  /* said while it lasts (a server restarting); the next tick tries again */
      .then(function () {
        state.polling = false;
        if (state.pollAgain) { state.pollAgain = false; poll(); }
      });
  }
  function loop() {
    poll();
    setTimeout(loop, POLL_MS);
  }

  // -- the rich menu --------------------------------------------------------------------------------
  function setMenuOpen(open) {
    $("richmenu").hidden = !open;
    $("menu-toggle").setAttribute("aria-expanded", open ? "true" : "false");
  }
  function loadRichMenu() {
    var office = state.office;
    state.richmenuLoading = true;
    return api("GET", "/simulator/richmenu?office=" + encodeURIComponent(office) + "&user=" + encodeURIComponent(state.user || ""))
      .then(function (data) {
        if (office !== state.office) return;
        state.richmenuId = data.rich_menu_id;
        var menu = data.menu || {};
        var size = menu.size || {width: 2500, height: 1686};
        var picture = $("richmenu-picture");
        picture.replaceChildren();
        var img = el("img");
        img.alt = "";
        img.src = data.image_url;
        picture.appendChild(img);
        (menu.areas || []).forEach(function (area) {
          var b = area.bounds || {};
          var button = el("button", "area");
          button.type = "button";
          button.setAttribute("aria-label", (area.action && (area.action.label || area.action.text)) || "");
          button.style.left = (100 * b.x / size.width) + "%";
          button.style.top = (100 * b.y / size.height) + "%";
          button.style.width = (100 * b.width / size.width) + "%";
          button.style.height = (100 * b.height / size.height) + "%";
          button.addEventListener("click", function () { doAction(area.action, "user"); });
          picture.appendChild(button);
        });
        $("chat-bar-text").textContent = menu.chatBarText || "";
        $("richmenu-note").hidden = data.source !== "definition";
        setMenuOpen(menu.selected !== false);
      })
      .catch(function (error) { state.richmenuId = undefined; showFailure(error); })
      .then(function () { state.richmenuLoading = false; });
  }
  /* The install deletes the menus earlier installs made (as `richmenu deploy` does): say what went. */
  function deployedText(data) {
    var parts = [fmt(T.deployed, {id: data.rich_menu_id})];
    if (data.deleted && data.deleted.length) parts.push(fmt(T.deployDeleted, {count: data.deleted.length}));
    if (data.left && data.left.length) parts.push(fmt(T.deployLeft, {count: data.left.length}));
    if (data.unlisted) parts.push(T.deployUnlisted);
    return parts.join("");
  }
  $("menu-toggle").addEventListener("click", function () { setMenuOpen($("richmenu").hidden); });
  $("richmenu-deploy").addEventListener("click", function () {
    api("POST", "/simulator/richmenu/deploy", {office: state.office})
      .then(function (data) { toast(deployedText(data)); loadRichMenu(); })
      .catch(function (error) { toast(T.deployError + failure(error)); });
  });

  // -- offices and users ------------------------------------------------------------------------------
  function remember() {
    var params = new URLSearchParams(location.search);
    params.set("office", state.office);
    if (state.user) params.set("user", state.user); else params.delete("user");
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    try { localStorage.setItem("sim.user." + state.office, state.user || ""); } catch (e) { /* private mode */ }
  }
  function currentUser() { return state.users.filter(function (u) { return u.user_id === state.user; })[0]; }
  function renderUsers() {
    var select = $("user");
    select.replaceChildren();
    state.users.forEach(function (u) {
      var option = el("option", "", u.display_name + (u.followed ? "" : T.blocked));
      option.value = u.user_id;
      option.selected = u.user_id === state.user;
      select.appendChild(option);
    });
    var user = currentUser();
    $("user-id").textContent = user ? user.user_id : "";
    $("block").hidden = !user || !user.followed;
    $("unblock").hidden = !user || user.followed;
  }
  function selectUser(userId) {
    state.user = userId || null;
    resetChat("user");
    renderUsers();
    remember();
    loadRichMenu();
    poll();
  }
  function loadUsers(preferred) {
    var office = state.office;
    return api("GET", "/simulator/users?office=" + encodeURIComponent(office)).then(function (data) {
      if (office !== state.office) return null;
      state.users = data.users || [];
      if (!state.users.length) return addUser();
      var wanted = preferred && state.users.some(function (u) { return u.user_id === preferred; }) ? preferred : state.users[0].user_id;
      selectUser(wanted);
      return null;
    });
  }
  function addUser() {
    return api("POST", "/simulator/users", {office: state.office, name_prefix: T.userPrefix}).then(function (user) {
      state.users.push(user);
      selectUser(user.user_id);
    }, showFailure);
  }
  function selectOffice(officeId, preferredUser) {
    state.office = officeId;
    state.user = null;
    state.richmenuId = undefined;
    var office = OFFICES.filter(function (o) { return o.id === officeId; })[0];
    $("chat-title").textContent = office ? office.name : officeId;
    $("clock-office").value = officeId;
    Array.prototype.forEach.call(document.querySelectorAll(".group-note, .account-note"), function (note) {
      note.hidden = note.dataset.office !== officeId;
    });
    resetChat("user");
    resetChat("staff");
    var stored = null;
    try { stored = localStorage.getItem("sim.user." + officeId); } catch (e) { /* private mode */ }
    loadQuota();
    return loadUsers(preferredUser || stored).catch(showFailure);
  }
  $("office").addEventListener("change", function () { selectOffice($("office").value); });
  $("user").addEventListener("change", function () { selectUser($("user").value); });
  $("add-user").addEventListener("click", function () { addUser(); });
  function setFollowed(followed) {
    var user = currentUser();
    if (!user) return;
    send("user", followed ? {type: "follow", unblocked: true} : {type: "unfollow"}).then(function (taken) {
      if (!taken) return;
      user.followed = followed;
      renderUsers();
    });
  }
  $("block").addEventListener("click", function () { setFollowed(false); });
  $("unblock").addEventListener("click", function () { setFollowed(true); });

  // -- typing, stickers, images -------------------------------------------------------------------------
  function composer(formId, inputId, pane) {
    $(formId).addEventListener("submit", function (event) {
      event.preventDefault();
      var input = $(inputId);
      var text = input.value;
      if (!text.trim()) return;
      input.value = "";
      send(pane, {type: "text", text: text});
    });
  }
  composer("user-composer", "user-input", "user");
  composer("group-composer", "group-input", "staff");
  $("image-button").addEventListener("click", function () { send("user", {type: "image"}); });
  STICKERS.forEach(function (s) {
    var button = el("button", "", s[2]);
    button.value = "sticker";
    button.setAttribute("aria-label", T.sticker + " " + s[1]);
    button.addEventListener("click", function () { send("user", {type: "sticker", packageId: s[0], stickerId: s[1]}); });
    $("sticker-grid").appendChild(button);
  });
  $("sticker-button").addEventListener("click", function () { $("stickers").showModal(); });
  $("group-join").addEventListener("click", function () { send("staff", {type: "join"}); });
  $("group-leave").addEventListener("click", function () { send("staff", {type: "leave"}); });

  // -- clock, worker, quota -----------------------------------------------------------------------------
  function setClock(value) {
    return api("POST", "/simulator/clock", {now: value})
      .then(function (data) {
        $("now").textContent = data.now_label;
        toast(fmt(T.clockSet, {now: data.now_label}));
      })
      .catch(function (error) { toast(error.status === 400 ? T.clockError : failure(error)); });
  }
  $("clock-form").addEventListener("submit", function (event) {
    event.preventDefault();
    setClock($("clock-input").value);
  });
  $("clock-real").addEventListener("click", function () { $("clock-input").value = ""; setClock(""); });
  $("run-worker").addEventListener("click", function () {
    api("POST", "/simulator/worker", {}).then(function (data) {
      toast(fmt(T.workerDone, {sent: (data.figures && data.figures.sent) || 0}));
      poll();
    }).catch(showFailure);
  });
  $("quota-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var office = state.office;
    api("POST", "/simulator/quota", {office: office, limit: $("quota-limit").value})
      .then(function (data) { if (office === state.office) showQuota(data.limit); toast(T.quotaSaved); })
      .catch(showFailure);
  });
  /* The field shows the office's saved limit (blank: none). */
  function showQuota(limit) { $("quota-limit").value = limit === null || limit === undefined ? "" : String(limit); }
  function loadQuota() {
    var office = state.office;
    showQuota(null);
    return api("GET", "/simulator/quota?office=" + encodeURIComponent(office))
      .then(function (data) { if (office === state.office) showQuota(data.limit); })
      .catch(showFailure);
  }

  // -- start ----------------------------------------------------------------------------------------------
  var params = new URLSearchParams(location.search);
  var first = params.get("office");
  if (!OFFICES.some(function (o) { return o.id === first; })) first = $("office").value;
  $("office").value = first;
  function ready() {
    document.body.dataset.ready = "1";  // the first office, user and chat are shown
    loop();
  }
  selectOffice(first, params.get("user")).then(ready, ready);
})();
