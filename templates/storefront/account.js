// The viewer's account page. It talks to the public billing API only, with the viewer's token,
// and shows texts from the page's "storefront-strings" (rendered in the viewer's language), never
// English of its own. An endpoint this deployment lacks (a 404 in the API's shape) hides its part.
// (Included into a template: no double braces here.)
(function () {
  "use strict";
  const S = JSON.parse(document.getElementById("storefront-strings").textContent);
  const T = S.text;
  const byId = (id) => document.getElementById(id);
  const tokenBox = byId("token");
  const message = byId("message");
  let token = localStorage.getItem("cinema-token") || tokenBox.value.trim();
  tokenBox.value = token;
  const state = { tariffs: [], subscription: null, card: undefined };

  // --- Words, money and dates --------------------------------------------------------

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (whole, key) => (key in values ? String(values[key]) : whole));
  }

  // Exactly what core.money.format_money writes: "3,990.00 RUB", in Russian "3 990,00 ₽".
  function money(amount, currency) {
    const m = S.money;
    const code = String(currency || "").toUpperCase();
    const exponent = m.zero_decimal.includes(code) ? 0 : m.three_decimal.includes(code) ? 3 : 2;
    const digits = String(Math.abs(Math.trunc(amount))).padStart(exponent + 1, "0");
    const whole = exponent ? digits.slice(0, -exponent) : digits;
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, m.group);
    const text = (amount < 0 ? "-" : "") + grouped + (exponent ? m.decimal + digits.slice(-exponent) : "");
    return text + m.between + (m.signs[code] || code);
  }

  const dateFormat = new Intl.DateTimeFormat(S.language.startsWith("ru") ? "ru-RU" : "en-GB",
    { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  function day(iso) { return iso ? dateFormat.format(new Date(iso)) : ""; }

  function tariffById(id) { return state.tariffs.find((t) => t.id === id || t.slug === id); }
  function every(period) { return period ? S.periods[period.unit + ":" + period.count] || "" : ""; }
  function pricePerPeriod(amount, currency, period) {
    const words = every(period);
    return money(amount, currency) + (words ? " " + words : "");
  }
  function label(table, value) { return (S[table] && S[table][value]) || String(value || "").replace(/_/g, " "); }

  // --- The API ------------------------------------------------------------------------

  function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({ "Accept": "application/json", "Authorization": "Bearer " + token }, opts.headers || {});
    if (opts.json !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    return fetch("/api/v1" + path, opts);
  }
  async function body(response) {
    try { return await response.json(); } catch (e) { return {}; }
  }
  // A 404 whose code is not_found means the route is not in this deployment yet.
  function missing(response, answer) {
    return response.status === 404 && (!answer.error || answer.error.code === "not_found");
  }
  function errorText(answer) { return answer && answer.error && answer.error.message ? answer.error.message : T.error; }
  function say(text, cls) { message.textContent = text || ""; message.className = cls || "error"; }

  // crypto.randomUUID exists only in secure contexts (https, localhost); over plain http
  // from another address the random bytes are still there.
  function idempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The viewer's id as the cinema's token names it (its `sub`); the API checks the signature.
  function viewerId() {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(decodeURIComponent(Array.from(atob(part),
        (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
      return claims.sub || "";
    } catch (e) { return ""; }
  }

  async function allPages(path) {
    const results = [];
    let next = path + (path.includes("?") ? "&" : "?") + "page_size=100";
    for (let page = 0; next && page < 10; page++) {
      const response = await api(next);
      const answer = await body(response);
      if (!response.ok) return missing(response, answer) ? null : results;
      results.push(...(answer.results || []));
      next = answer.next ? answer.next.slice(answer.next.indexOf("/api/v1") + 7) : null;
    }
    return results;
  }

  // --- Little DOM helpers -----------------------------------------------------------

  function make(tag, props, children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  function actionButton(text, id, cls, handler) {
    const button = make("button", { type: "button", className: cls || "secondary", textContent: text, id: id });
    button.addEventListener("click", async () => {
      button.disabled = true;
      say("");
      try { await handler(); } catch (e) { say(T.offline); }
      button.disabled = false;
    });
    return button;
  }
  // On a phone each row becomes a small card: every cell says its column (data-label, CSS).
  function table(headers, rows) {
    const head = make("thead", {}, [make("tr", {}, headers.map((h) => make("th", { scope: "col", textContent: h })))]);
    const rowsNodes = rows.map((cells) => make("tr", {}, cells.map((c, i) => {
      const cell = typeof c === "object" ? c : make("td", { textContent: c });
      cell.dataset.label = headers[i];
      return cell;
    })));
    return make("table", {}, [head, make("tbody", {}, rowsNodes)]);
  }
  function amountCell(text) { return make("td", { className: "amount", textContent: text }); }

  // --- Access badge -------------------------------------------------------------------

  async function loadAccess() {
    const badge = byId("access");
    let response;
    try { response = await api("/access/"); } catch (e) { return; }
    if (!response.ok) { badge.textContent = T.not_signed_in; badge.className = "badge no"; return; }
    const answer = await body(response);
    badge.textContent = answer.has_access ? T.access_yes : T.access_no;
    badge.className = "badge " + (answer.has_access ? "yes" : "no");
    badge.dataset.hasAccess = String(answer.has_access);
  }

  // --- The account panel ------------------------------------------------------------

  const LIVE = ["pending", "trialing", "active", "past_due"];
  const RUNNING = ["trialing", "active", "past_due"];

  async function loadSubscription() {
    const subscriptions = await allPages("/subscriptions/");
    const list = subscriptions || [];
    state.subscription = list.find((s) => LIVE.includes(s.status)) || list[0] || null;
  }

  async function loadCard() {
    const response = await api("/payment-method/");
    const answer = await body(response);
    if (response.ok) state.card = answer;
    else if (response.status === 404 && answer.error && answer.error.code === "no_payment_method") state.card = null;
    else state.card = undefined; // not in this deployment (yet): the card line is left out
  }

  function running() { return state.subscription && RUNNING.includes(state.subscription.status); }

  function nextChargeText(s) {
    const plan = tariffById(s.tariff.id);
    const period = plan ? plan.period : null;
    if (s.status === "pending" || s.status === "canceled" || s.status === "expired") return null;
    if (s.cancel_at_period_end) return fill(T.no_charge_canceled, { date: day(s.current_period_end) });
    if (!s.autopay) return fill(T.no_charge_autopay_off, { date: day(s.current_period_end) });
    const next = s.next_charge || {};
    const amount = next.amount !== undefined ? next.amount : s.amount;
    const currency = next.currency || s.currency;
    if (s.status === "trialing") {
      return fill(T.trial_until, { date: day(s.trial_end || s.current_period_end), price: pricePerPeriod(amount, currency, period) });
    }
    const at = next.at || (s.status === "past_due" ? s.next_renewal_attempt_at : s.current_period_end);
    if (!at) return fill(T.due_now, { amount: money(amount, currency) });  // the bank waits for the viewer
    return fill(T.next_charge_value, { amount: money(amount, currency), date: day(at) });
  }

  function cardText() {
    const c = state.card;
    if (!c) return T.no_card;
    const brand = c.brand ? c.brand.charAt(0).toUpperCase() + c.brand.slice(1) : "";
    const expiry = c.exp_month ? " · " + fill(T.card_expires, { month: String(c.exp_month).padStart(2, "0"), year: c.exp_year }) : "";
    return (brand + " •••• " + (c.last4 || "")).trim() + expiry;
  }

  function renderAccount() {
    const panel = byId("account");
    const s = state.subscription;
    panel.replaceChildren();
    if (!s || !LIVE.includes(s.status)) {
      panel.append(make("p", { id: "no-subscription", textContent: T.no_subscription }));
      return;
    }
    const facts = make("dl", { className: "facts" });
    function fact(term, value, id, termId) {
      facts.append(make("dt", termId ? { textContent: term, id: termId } : { textContent: term }), make("dd", { textContent: value, id: id }));
    }
    const plan = tariffById(s.tariff.id);
    fact(T.plan, s.tariff.name + " · " + pricePerPeriod(s.amount, s.currency, plan ? plan.period : null), "plan");
    fact(T.status, label("subscription_status", s.status), "status");
    const next = nextChargeText(s);
    if (next) fact(T.next_charge, next, "next-charge");
    if (RUNNING.includes(s.status)) fact(T.autopay, s.autopay ? T.autopay_on : T.autopay_off, "autopay");
    // #payment-method: where the card-expiry email's link (CARD_UPDATE_URL) leads.
    if (state.card !== undefined) fact(T.card, cardText(), "card", "payment-method");
    panel.append(facts);

    if (s.status === "pending") {
      panel.append(make("p", { className: "note", textContent: T.pending_note }),
        actionButton(T.complete_payment, "complete-payment", "primary", () => completePayment(s)));
    }
    if (s.status === "past_due") {
      panel.append(make("p", { className: "note error", textContent: T.past_due_note }));
      if (s.payment_action_url) {
        panel.append(make("a", { className: "button", id: "confirm-payment", href: s.payment_action_url, textContent: T.confirm_payment }));
      } else if (s.next_renewal_attempt_at) {
        panel.append(make("p", { className: "note", textContent: fill(T.retry_on, { date: day(s.next_renewal_attempt_at) }) }));
      }
    }
    if (s.scheduled_change) {
      const change = s.scheduled_change;
      panel.append(make("p", { className: "note", id: "scheduled-change",
        textContent: fill(T.scheduled_change, { plan: change.tariff.name, date: day(change.effective_at) }) }),
      actionButton(T.keep_plan, "keep-plan", "secondary", () => act("/subscriptions/" + s.id + "/change/", { method: "DELETE" })));
    }
    if (s.cancel_at_period_end && RUNNING.includes(s.status)) {
      panel.append(make("p", { className: "note", textContent: fill(T.canceled_note, { date: day(s.current_period_end) }) }));
    }
    const buttons = make("p");
    if (RUNNING.includes(s.status)) {
      if (state.card !== undefined) buttons.append(actionButton(T.update_card, "update-card", "secondary", updateCard));
      buttons.append(actionButton(s.autopay ? T.turn_autopay_off : T.turn_autopay_on, "autopay-toggle", "secondary",
        () => act("/subscriptions/" + s.id + "/autopay/", { method: "POST", json: { enabled: !s.autopay } })));
      if (s.cancel_at_period_end) {
        buttons.append(actionButton(T.resume, "resume", "secondary",
          () => act("/subscriptions/" + s.id + "/resume/", { method: "POST", json: {} })));
      } else {
        buttons.append(actionButton(T.cancel, "cancel", "secondary", async () => {
          if (!window.confirm(fill(T.confirm_cancel, { date: day(s.current_period_end) }))) return;
          await act("/subscriptions/" + s.id + "/cancel/", { method: "POST", json: {} });
        }));
      }
    }
    panel.append(buttons);
  }

  async function act(path, options) {
    const response = await api(path, options);
    const answer = await body(response);
    if (!response.ok) say(missing(response, answer) ? T.not_available : errorText(answer));
    await refresh();
    return response.ok ? answer : null;
  }

  async function updateCard() {
    const response = await api("/payment-method/update/", { method: "POST", json: {} });
    const answer = await body(response);
    if (response.ok && answer.checkout_url) { window.location.assign(answer.checkout_url); return; }
    say(missing(response, answer) ? T.not_available : errorText(answer));
  }

  // A pending subscription's `payment_action_url` is the review page of its open checkout; once
  // that page has expired it is null, and subscribing again to the same tariff opens a fresh one.
  async function completePayment(s) {
    if (s.payment_action_url) { window.location.assign(s.payment_action_url); return; }
    await subscribe(s.tariff.slug || String(s.tariff.id));
  }

  // --- Plans: subscribe, or switch with the price shown first ------------------------------

  async function subscribe(tariff) {
    const payload = { tariff: tariff, autopay: true };
    const promo = byId("promo-code").value.trim();
    if (promo) payload.promo_code = promo;
    const response = await api("/subscriptions/", { method: "POST", headers: { "Idempotency-Key": idempotencyKey() }, json: payload });
    const answer = await body(response);
    if (response.ok) {
      // Our own page first: it states what the viewer agrees to, then leads to the provider's.
      window.location.assign("/checkout/review/?checkout=" + encodeURIComponent(answer.checkout.id));
      return;
    }
    say(errorText(answer));
  }

  const dialog = byId("change");
  let changeRequest = null;

  async function previewChange(tariff) {
    const s = state.subscription;
    changeRequest = { subscription: s.id, tariff: tariff, key: idempotencyKey() };
    byId("change-title").textContent = fill(T.preview_title, { plan: tariff.name });
    byId("change-terms").textContent = T.preview_loading;
    byId("change-error").textContent = "";
    byId("change-confirm").hidden = true;
    if (!dialog.open) dialog.showModal();
    let response;
    try {
      response = await api("/subscriptions/" + s.id + "/change/", { method: "POST", json: { tariff: tariff.id, preview: true } });
    } catch (e) { byId("change-terms").textContent = T.offline; return; }
    const answer = await body(response);
    if (!response.ok) {
      byId("change-terms").textContent = "";
      byId("change-error").textContent = missing(response, answer) ? T.not_available : errorText(answer);
      return;
    }
    const newPrice = pricePerPeriod(tariff.amount, tariff.currency, tariff.period);
    byId("change-terms").textContent = answer.kind === "upgrade"
      ? fill(T.preview_upgrade, { amount: money(answer.amount_due, answer.currency || tariff.currency), date: day(answer.new_period_end), price: newPrice })
      : fill(T.preview_downgrade, { date: day(answer.effective_at), price: newPrice });
    byId("change-terms").dataset.kind = answer.kind;
    byId("change-confirm").hidden = false;
  }

  async function confirmChange() {
    const request = changeRequest;
    const button = byId("change-confirm");
    button.disabled = true;
    try {
      const response = await api("/subscriptions/" + request.subscription + "/change/", {
        method: "POST", headers: { "Idempotency-Key": request.key }, json: { tariff: request.tariff.id, preview: false } });
      const answer = await body(response);
      if (response.ok && answer.payment_action_url) { window.location.assign(answer.payment_action_url); return; }
      if (!response.ok) { byId("change-error").textContent = errorText(answer); return; }
      dialog.close();
      say(answer.scheduled_change ? T.change_scheduled : T.changed, "ok");
      await refresh(true);
    } catch (e) {
      byId("change-error").textContent = T.offline;
    } finally {
      button.disabled = false;
    }
  }
  byId("change-confirm").addEventListener("click", confirmChange);
  byId("change-close").addEventListener("click", () => dialog.close());

  function renderTariffs() {
    const list = byId("tariffs");
    const s = state.subscription;
    const isRunning = running();
    byId("promo-row").hidden = isRunning;
    list.replaceChildren();
    for (const tariff of state.tariffs) {
      const mine = s && LIVE.includes(s.status) && s.tariff.id === tariff.id;
      const card = make("article", { className: "tariff" + (mine && isRunning ? " current" : "") });
      card.dataset.slug = tariff.slug;
      const trial = tariff.trial_days && !isRunning
        ? (S.trials[String(tariff.trial_days)] || "") + ", " + fill(T.trial_then, { price: pricePerPeriod(tariff.amount, tariff.currency, tariff.period) })
        : "";
      card.append(
        make("h2", { textContent: tariff.name }),
        make("div", { className: "price", textContent: pricePerPeriod(tariff.amount, tariff.currency, tariff.period) }),
        make("p", { className: "muted", textContent: tariff.description }),
        make("p", { textContent: trial, hidden: !trial }));
      if (mine && isRunning) {
        card.append(make("p", { className: "ok", textContent: T.your_plan }));
      } else if (isRunning) {
        if (s.status !== "past_due") card.append(actionButton(T.switch, "", "primary", () => previewChange(tariff)));
      } else {
        card.append(actionButton(T.subscribe, "", "primary", () => subscribe(tariff.slug)));
      }
      list.append(card);
    }
  }

  // --- The viewer's money: payments, refunds, refund requests ---------------------------

  function renderList(containerId, rows, emptyText, headers, toCells) {
    const box = byId(containerId);
    box.closest("section").hidden = rows === null;  // the endpoint is not in this deployment
    if (rows === null) return;
    box.replaceChildren(rows.length ? table(headers, rows.map(toCells)) : make("p", { className: "muted", textContent: emptyText }));
  }

  const REFUNDABLE = ["succeeded", "partially_refunded"];

  async function loadHistory() {
    const [payments, refunds, requests] = await Promise.all(
      [allPages("/payments/"), allPages("/refunds/"), allPages("/refund-requests/")]);
    const asked = new Set((requests || []).filter((r) => r.status === "open").map((r) => r.payment));
    renderList("payments", payments, T.no_payments,
      [T.col_date, T.col_what, T.col_amount, T.col_status, T.col_refunded, T.col_actions], (p) => {
        const period = p.period_start && p.period_end
          ? " · " + fill(T.period_from_to, { start: day(p.period_start), end: day(p.period_end) }) : "";
        const refunded = p.refunded_amount ? money(p.refunded_amount, p.currency) : "—";
        // One child, so that the phone layout (a label and a value per cell) keeps the message with its status.
        const status = make("td", {}, [make("div", {}, [label("payment_status", p.status),
          p.failure_message ? make("div", { className: "muted", textContent: p.failure_message }) : null])]);
        const actions = make("td");
        if (REFUNDABLE.includes(p.status) && !asked.has(p.id)) {
          actions.append(make("button", { type: "button", className: "link", textContent: T.ask_refund,
            onclick: () => openRefundRequest(p) }));
        }
        return [day(p.paid_at || p.created_at), label("payment_kind", p.kind) + period,
          amountCell(money(p.amount, p.currency)), status, amountCell(refunded), actions];
      });
    renderList("refunds", refunds, T.no_refunds, [T.col_date, T.col_amount, T.col_status],
      (r) => [day(r.created_at), amountCell(money(r.amount, r.currency)), label("refund_status", r.status)]);
    renderList("refund-requests", requests, T.no_refund_requests,
      [T.col_date, T.col_amount, T.col_reason, T.col_status, T.col_decision],
      (r) => [day(r.created_at), amountCell(r.payment_amount !== undefined ? money(r.payment_amount, r.currency) : ""),
        r.reason || "", label("refund_request_status", r.status), r.decision_note || ""]);
  }

  // Asking for a payment back: the viewer says why; support decides (and the page shows it).
  const refundDialog = byId("refund-dialog");
  let refundPayment = null;

  function openRefundRequest(payment) {
    refundPayment = payment;
    byId("refund-dialog-payment").textContent = day(payment.paid_at || payment.created_at) + " · " + money(payment.amount, payment.currency);
    byId("refund-reason").value = "";
    byId("refund-error").textContent = "";
    refundDialog.showModal();
  }

  byId("refund-send").addEventListener("click", async () => {
    const button = byId("refund-send");
    const reason = byId("refund-reason").value.trim();
    if (!reason) { byId("refund-error").textContent = T.reason_required; return; }
    button.disabled = true;
    try {
      const response = await api("/payments/" + refundPayment.id + "/refund-request/", { method: "POST", json: { reason: reason } });
      const answer = await body(response);
      if (!response.ok) { byId("refund-error").textContent = errorText(answer); return; }
      refundDialog.close();
      say(T.refund_requested, "ok");
      await refresh(true);
    } catch (e) {
      byId("refund-error").textContent = T.offline;
    } finally {
      button.disabled = false;
    }
  });
  byId("refund-close").addEventListener("click", () => refundDialog.close());

  // --- Putting it together ------------------------------------------------------------------

  async function loadTariffs() {
    const response = await fetch("/api/v1/tariffs/", { headers: { "Accept": "application/json" } });
    const answer = await body(response);
    state.tariffs = answer.results || [];
  }

  let shown = "";

  // The browser looks for the URL's #fragment before the panel is drawn: once it is, show the
  // card section a link pointed at (the card-expiry email's) and put the focus on its button.
  let fragmentShown = false;
  function revealLinkedSection() {
    if (fragmentShown || window.location.hash !== "#payment-method") return;
    const target = byId("payment-method");
    if (!target) return;
    fragmentShown = true;
    target.scrollIntoView({ block: "center" });
    const button = byId("update-card");
    if (button) button.focus({ preventScroll: true });
  }

  async function refresh(withHistory) {
    try {
      await Promise.all([loadSubscription(), loadCard(), state.tariffs.length ? null : loadTariffs()]);
      // Drawn again only when something changed, so a button is not replaced under the pointer.
      const now = JSON.stringify([state.subscription, state.card, state.tariffs]);
      const changed = now !== shown;
      if (changed) {
        shown = now;
        renderAccount();
        renderTariffs();
        revealLinkedSection();
      }
      const id = viewerId();
      byId("viewer").textContent = id ? fill(T.signed_in_as, { id: id }) : "";
      await Promise.all([loadAccess(), withHistory === false && !changed ? null : loadHistory()]);
    } catch (e) {
      say(T.offline);
    }
  }

  byId("use-token").addEventListener("click", () => {
    token = tokenBox.value.trim();
    localStorage.setItem("cinema-token", token);
    say("");
    refresh();
  });

  refresh();
  // The worker settles payments in the background: keep the badge and the panel current.
  setInterval(() => { if (!dialog.open && !refundDialog.open) refresh(false); }, 3000);
})();
