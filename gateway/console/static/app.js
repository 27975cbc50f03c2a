// The Collect console: one page, routed on the address, built only on the public HTTP API (/v1/...).
// The session cookie stands for the member's bearer token; writes carry the session's CSRF token.
"use strict";

// ---------- words (French by default, English available) ----------
const WORDS = {
  overview: ["Vue d'ensemble", "Overview"], organizations: ["Organisations", "Organisations"],
  sales: ["Ventes", "Sales"], terminal: ["Terminaux", "Terminal"], banking: ["Banque", "Banking"],
  operations: ["Opérations", "Operations"], sign_in: ["Se connecter", "Sign in"], sign_out: ["Se déconnecter", "Sign out"],
  email: ["E-mail", "E-mail"], password: ["Mot de passe", "Password"], today: ["Aujourd'hui", "Today"],
  last30: ["30 derniers jours", "Last 30 days"], gross: ["Ventes", "Sales"], fees: ["Frais", "Fees"],
  refunded: ["Remboursé", "Refunded"], net: ["Net", "Net"], count: ["Nombre", "Count"],
  attention: ["À surveiller", "Needs attention"], nothing: ["Rien à signaler.", "Nothing to report."],
  onboarding_due: ["Inscription Stripe incomplète", "Stripe onboarding incomplete"],
  failed_events: ["Événements webhook en échec", "Failed webhook events"],
  unmatched_payouts: ["Virements Stripe non rapprochés", "Unmatched payouts"],
  failed_refunds: ["Remboursements en échec", "Failed refunds"], name: ["Nom", "Name"], status: ["Statut", "Status"],
  charges: ["Paiements", "Charges"], payouts: ["Virements", "Payouts"], details: ["Détails", "Details"],
  requirements: ["Éléments demandés par Stripe", "What Stripe still requires"],
  onboarding: ["Inscription Stripe", "Stripe onboarding"], onboarding_link: ["Nouveau lien d'inscription", "Fresh onboarding link"],
  create_account: ["Créer le compte Stripe", "Create the Stripe account"], open_link: ["Ouvrir le lien", "Open the link"],
  refresh: ["Actualiser", "Refresh"], fee_policy: ["Commission et modèle", "Fee policy and charge model"],
  charge_model: ["Modèle d'encaissement", "Charge model"], fee_percent_bps: ["Commission (points de base)", "Fee (basis points)"],
  fee_minimum: ["Commission minimale (€)", "Minimum fee (€)"], save: ["Enregistrer", "Save"], saved: ["Enregistré.", "Saved."],
  members: ["Membres", "Members"], role: ["Rôle", "Role"], add_member: ["Ajouter un membre", "Add a member"],
  add: ["Ajouter", "Add"], disable: ["Désactiver", "Disable"], enable: ["Réactiver", "Enable"], disabled: ["désactivé", "disabled"],
  active: ["actif", "active"], agent: ["Vendeur", "Agent"], org_admin: ["Trésorier (admin)", "Treasurer (admin)"],
  platform_admin: ["Opérateur", "Platform admin"], all: ["Tous", "All"], day: ["Jour", "Day"], method: ["Moyen", "Method"],
  amount: ["Montant", "Amount"], date: ["Date", "Date"], live: ["Mise à jour automatique", "Live updates"],
  ranking: ["Classement des vendeurs (30 jours)", "Agents ranking (30 days)"], refunds: ["Remboursements", "Refunds"],
  refund: ["Rembourser", "Refund"], reason: ["Motif", "Reason"], confirm_refund: ["Confirmer le remboursement de", "Confirm the refund of"],
  confirm: ["Confirmer", "Confirm"], cancel: ["Annuler", "Cancel"], refund_done: ["Remboursement demandé.", "Refund requested."],
  whole_amount: ["tout le restant", "the whole remainder"], offline: ["hors ligne", "offline"], payment: ["Paiement", "Payment"],
  locations: ["Emplacements", "Locations"], readers: ["Lecteurs", "Readers"], label: ["Libellé", "Label"],
  address: ["Adresse", "Address"], city: ["Ville", "City"], postal_code: ["Code postal", "Postal code"],
  registration_code: ["Code d'appairage", "Registration code"], location: ["Emplacement", "Location"],
  transactions: ["Transactions bancaires", "Bank transactions"], reconciliation: ["Rapprochement", "Reconciliation"],
  matches: ["Rapprochements", "Matches"], unmatched_credits: ["Crédits bancaires non rapprochés", "Unmatched bank credits"],
  reconciled: ["rapproché", "reconciled"], not_reconciled: ["non rapproché", "not reconciled"], unmatch: ["Défaire", "Unmatch"],
  match: ["Rapprocher", "Match"], sync_bank: ["Synchroniser Qonto", "Sync Qonto"], sync_payouts: ["Synchroniser les virements", "Sync payouts"],
  run_reconciliation: ["Lancer le rapprochement", "Run reconciliation"], allocation: ["Règles de répartition", "Allocation rules"],
  entity: ["Entité", "Entity"], share_bps: ["Part (points de base)", "Share (basis points)"], tax_rate_bps: ["Taux d'impôt (pb)", "Tax rate (bps)"],
  add_rule: ["Ajouter une règle", "Add a rule"], add_entity: ["Ajouter une entité", "Add an entity"], remove: ["Retirer", "Remove"],
  organization: ["Organisation", "Organisation"], any_org: ["toutes (par défaut)", "any (default)"],
  daily_report: ["Rapport quotidien", "Daily report"], show: ["Afficher", "Show"], send_slack: ["Envoyer sur Slack", "Send to Slack"],
  download_csv: ["Télécharger le CSV", "Download CSV"], download_fec: ["Télécharger le FEC", "Download FEC"],
  from: ["Du", "From"], to: ["Au", "To"], estimated_tax: ["Impôt estimé", "Estimated tax"], revenue: ["Revenu", "Revenue"],
  bank_credits: ["Crédits bancaires", "Bank credits"], difference: ["Écart", "Difference"], events: ["Événements webhook", "Webhook events"],
  replay: ["Rejouer", "Replay"], replay_all: ["Rejouer tous les échecs", "Replay every failure"], type: ["Type", "Type"],
  service: ["Service", "Service"], attempts: ["Essais", "Attempts"], error: ["Erreur", "Error"], received: ["Reçu", "Received"],
  not_found: ["Introuvable (ou pas à vous).", "Not found (or not yours)."], forbidden: ["Votre rôle ne permet pas d'afficher cette page.", "Your role does not allow this page."],
  session_over: ["Session terminée : reconnectez-vous.", "Session over: sign in again."], create_org: ["Nouvelle organisation", "New organisation"],
  country: ["Pays", "Country"], business_type: ["Type de structure", "Business type"], create: ["Créer", "Create"],
  bank_label: ["Libellé", "Label"], reference: ["Référence", "Reference"], side: ["Sens", "Side"], arrival: ["Arrivée", "Arrival"],
  rule: ["Règle", "Rule"], explanation: ["Explication", "Explanation"], credit: ["Crédit", "Credit"], payout: ["Virement", "Payout"],
  no_data: ["Aucune donnée.", "No data."], per_org: ["Par organisation", "Per organisation"], net_30: ["Net par jour, 30 jours", "Net per day, 30 days"],
  agent_only: ["Vos ventes", "Your sales"], sent: ["Envoyé.", "Sent."], language: ["English", "Français"],
};
let lang = localStorage.getItem("console.lang") === "en" ? "en" : "fr";
const t = (key) => (WORDS[key] ? WORDS[key][lang === "fr" ? 0 : 1] : key);
const locale = () => (lang === "fr" ? "fr-FR" : "en-GB");

// ---------- formatting ----------
function money(minor, currency) {
  const format = new Intl.NumberFormat(locale(), { style: "currency", currency: (currency || "eur").toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format((minor || 0) / 10 ** digits);
}
function when(stamp) {
  if (!stamp) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "short" }).format(new Date(stamp));
}
function dayIn(timeZone, offsetDays = 0) {
  const moment = new Date(Date.now() + offsetDays * 86400000);
  try { return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(moment); }
  catch { return moment.toISOString().slice(0, 10); }
}
function parseEuros(text) {  // "1 234,56" or "1234.56" -> 123456 minor units; NaN when unreadable
  const clean = String(text).replace(/[\s\u00a0\u202f€]/g, "").replace(",", ".");
  if (!/^\d+(\.\d{1,2})?$/.test(clean)) return NaN;
  const [whole, frac = ""] = clean.split(".");
  return Number(whole) * 100 + Number((frac + "00").slice(0, 2));
}

// ---------- DOM ----------
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children.flat(Infinity)) if (child) node.append(child);
  return node;
}
function table(headers, rows, opts = {}) {
  const head = h("tr", {}, headers.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)));
  return h("div", { class: "table-wrap" }, h("table", { id: opts.id },
    opts.caption ? h("caption", { class: "muted" }, opts.caption) : null,
    h("thead", {}, head), h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, t("no_data")))])));
}
const num = (text) => h("td", { class: "num" }, text);
function badge(ok, yes, no) { return h("span", { class: "badge " + (ok ? "ok" : "warn") }, ok ? yes : no); }
function mount(view, ...nodes) {  // replaceChildren would print a skipped (null) section as "null"
  view.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}
const summary = (result) => Object.entries(result).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${k}: ${v}`).join(" · ");
function toast(message) {
  const box = document.getElementById("toast");
  box.replaceChildren(h("span", {}, message));
  setTimeout(() => { if (box.textContent === message) box.replaceChildren(); }, 4000);
}
function field(label, input, name) {
  if (name) input.dataset.field = name;
  if (!input.id) input.id = "f-" + Math.random().toString(36).slice(2, 9);
  return h("label", { for: input.id }, label, input, h("span", { class: "field-error", id: input.id + "-error" }));
}

// ---------- the API ----------
const state = { csrf: "", member: null, organization: null, timers: [] };
class Problem extends Error {
  constructor(status, body) { super(body.detail || body.title || String(status)); this.status = status; this.body = body; }
}
async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;
  if (opts.background) headers["X-Console-Background"] = "1";
  const answer = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await answer.text();
  const data = text && (answer.headers.get("content-type") || "").includes("json") ? JSON.parse(text) : text;
  if (answer.status === 401 && !path.startsWith("/console/session")) { state.member = null; toast(t("session_over")); go("/console/login"); throw new Problem(401, data || {}); }
  if (!answer.ok) throw new Problem(answer.status, data || {});
  return data;
}
const qs = (params) => { const q = new URLSearchParams(); for (const [k, v] of Object.entries(params)) if (v) q.set(k, v); const s = q.toString(); return s ? "?" + s : ""; };
function showErrors(form, problem) {  // problem+json errors[].field shown at the matching input
  form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  let placed = false;
  for (const error of (problem.body && problem.body.errors) || []) {
    const input = form.querySelector(`[data-field="${CSS.escape(error.field)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", input.id + "-error");
      document.getElementById(input.id + "-error").textContent = error.message; placed = true;
    }
  }
  const general = form.querySelector(".form-error") || form.appendChild(h("p", { class: "form-error error", role: "alert" }));
  general.textContent = placed ? "" : problem.message;
}

// ---------- routing ----------
const isPlatform = () => state.member && state.member.role === "platform_admin";
const isAdmin = () => state.member && (state.member.role === "org_admin" || isPlatform());
function go(path) { if (location.pathname + location.search !== path) history.pushState({}, "", path); render(); }
window.addEventListener("popstate", render);
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (link && !event.ctrlKey && !event.metaKey && event.button === 0) { event.preventDefault(); go(link.getAttribute("href")); }
});
const ROUTES = [  // [pattern, page, who]; new pages (disputes, payouts, audit) add a line here and in navItems()
  [/^\/console\/?$/, overviewPage, "admin"],
  [/^\/console\/login$/, loginPage, "anyone"],
  [/^\/console\/organizations$/, organizationsPage, "platform"],
  [/^\/console\/organizations\/([^/]+)$/, organizationPage, "admin"],
  [/^\/console\/organizations\/([^/]+)\/sales$/, salesPage, "member"],
  [/^\/console\/organizations\/([^/]+)\/payments\/([^/]+)$/, paymentPage, "member"],
  [/^\/console\/organizations\/([^/]+)\/terminal$/, terminalPage, "admin"],
  [/^\/console\/banking$/, bankingPage, "platform"],
  [/^\/console\/operations$/, operationsPage, "platform"],
  [/^\/console\/disputes$/, disputesPage, "admin"],
];
function navItems() {
  const m = state.member; if (!m) return [];
  const own = m.organization_id;
  if (m.role === "agent") return [[`/console/organizations/${own}/sales`, t("agent_only")]];
  const items = [["/console", t("overview")]];
  if (isPlatform()) items.push(["/console/organizations", t("organizations")], ["/console/banking", t("banking")], ["/console/operations", t("operations")]);
  else items.push([`/console/organizations/${own}`, t("organizations")], [`/console/organizations/${own}/sales`, t("sales")], [`/console/organizations/${own}/terminal`, t("terminal")],
    [`/console/organizations/${own}/payouts`, t("payouts")], [`/console/organizations/${own}/books`, t("books")]);
  items.push(["/console/audit", t("audit")]);
  items.push(["/console/disputes", t("disputes")]);
  return items;
}
function renderHeader() {
  const top = document.getElementById("top");
  const here = location.pathname;
  const langButton = h("button", { type: "button", class: "secondary", lang: lang === "fr" ? "en" : "fr", onclick: () => { lang = lang === "fr" ? "en" : "fr"; localStorage.setItem("console.lang", lang); render(); } }, t("language"));
  top.replaceChildren(
    h("span", { class: "brand" }, "Collect"),
    h("nav", { "aria-label": "Console" }, navItems().map(([href, label]) => h("a", { href, "data-nav": true, "aria-current": here === href ? "page" : null }, label))),
    state.member ? h("span", { class: "who" }, `${state.member.email} · ${t(state.member.role)}`) : null,
    langButton,
    state.member ? h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, t("sign_out")) : null,
  );
  document.documentElement.lang = lang;
}
async function render() {
  state.timers.forEach(clearInterval); state.timers = [];
  // Each render draws into its own view: a slower page still loading writes into a view no longer shown.
  const view = h("div", {});
  document.getElementById("main").replaceChildren(view);
  if (!state.member && location.pathname !== "/console/login") {
    try { const session = await api("GET", "/console/session"); state.csrf = session.csrf_token; state.member = session.member; }
    catch { history.replaceState({}, "", "/console/login?next=" + encodeURIComponent(location.pathname + location.search)); }
  }
  if (!view.isConnected) return;
  renderHeader();
  for (const [pattern, page, who] of ROUTES) {
    const found = location.pathname.match(pattern);
    if (!found) continue;
    if (who !== "anyone" && state.member) {
      if (who === "platform" && !isPlatform() || who === "admin" && !isAdmin()) {
        if (state.member.role === "agent" && found[0].match(/^\/console\/?$/)) { go(`/console/organizations/${state.member.organization_id}/sales`); return; }
        view.replaceChildren(h("h1", {}, t("forbidden"))); return;
      }
    }
    view.replaceChildren(h("p", { class: "muted" }, "…"));
    try { await page(view, ...found.slice(1).map(decodeURIComponent)); }
    catch (error) {
      if (!(error instanceof Problem)) throw error;
      if (error.status === 401) return;
      view.replaceChildren(h("h1", { id: "problem" }, error.status === 404 ? t("not_found") : error.status === 403 ? t("forbidden") : error.message));
    }
    if (view.isConnected) document.title = (view.querySelector("h1") || {}).textContent + " — Collect";
    return;
  }
  view.replaceChildren(h("h1", {}, t("not_found")));
}
async function signOut() {
  try { await api("DELETE", "/console/session"); } catch { /* already signed out */ }
  state.member = null; state.csrf = ""; go("/console/login");
}

// ---------- login ----------
async function loginPage(main) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const session = await api("POST", "/console/session", { email: email.value, password: password.value });
      state.csrf = session.csrf_token; state.member = session.member;
      const next = new URLSearchParams(location.search).get("next");
      go(next && next.startsWith("/console/") && !next.startsWith("/console/login") ? next : "/console");
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, field(t("email"), email, "email"), field(t("password"), password, "password"), h("button", { type: "submit" }, t("sign_in")));
  mount(main, h("div", { class: "login" }, h("h1", {}, "Collect — console"), form));
  email.focus();
}

// ---------- overview ----------
async function listAll(path, limit = 100) { return (await api("GET", path + (path.includes("?") ? "&" : "?") + "limit=" + limit)).data; }
async function myOrganizations() {
  if (isPlatform()) return listAll("/v1/organizations");
  return [await api("GET", `/v1/organizations/${state.member.organization_id}`)];
}
function barChart(days, label) {
  const width = 600, height = 160, pad = 18, max = Math.max(1, ...days.map((d) => d.net));
  const step = (width - pad) / Math.max(days.length, 1);
  return h("figure", { class: "chart card" }, h("figcaption", { class: "muted" }, label),
    svg("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img", "aria-label": label },
      days.map((d, i) => {
        const barHeight = Math.max(0, Math.round((d.net / max) * height));
        return svg("rect", { class: "bar", x: pad + i * step, y: height - barHeight, width: Math.max(step - 2, 1), height: barHeight },
          svg("title", {}, document.createTextNode(`${d.date}: ${money(d.net, d.currency)}`)));
      }),
      svg("text", { x: 0, y: height + 12 }, document.createTextNode(days.length ? days[0].date : "")),
      svg("text", { x: width - 60, y: height + 12 }, document.createTextNode(days.length ? days[days.length - 1].date : ""))));
}
async function overviewPage(main) {
  const orgs = await myOrganizations();
  const zone = (orgs[0] && orgs[0].timezone) || "Europe/Paris";
  const from = dayIn(zone, -29), today = dayIn(zone);
  const stats = await Promise.all(orgs.map((o) => api("GET", `/v1/organizations/${o.id}/stats${qs({ from, to: today })}`).catch(() => null)));
  const byDay = {};
  const sum = { today: { gross: 0, fees: 0, refunded: 0, net: 0, count: 0 }, month: { gross: 0, fees: 0, refunded: 0, net: 0, count: 0 } };
  const rows = orgs.map((org, i) => {
    const s = stats[i] || { days: [], totals: {} };
    const day = s.days.find((d) => d.date === today) || {};
    for (const k of Object.keys(sum.today)) { sum.today[k] += day[k] || 0; sum.month[k] += s.totals[k] || 0; }
    for (const d of s.days) byDay[d.date] = (byDay[d.date] || 0) + d.net;
    return h("tr", {}, h("td", {}, h("a", { href: `/console/organizations/${org.id}`, "data-nav": true }, org.name)),
      num(money(day.gross)), num(money(s.totals.gross)), num(money(s.totals.fees)), num(money(s.totals.refunded)), num(money(s.totals.net)));
  });
  const days = [];
  for (let i = 29; i >= 0; i--) { const d = dayIn(zone, -i); days.push({ date: d, net: byDay[d] || 0, currency: "eur" }); }
  const kpis = (label, s) => h("section", { class: "card", "aria-label": label }, h("h2", {}, label), h("div", { class: "grid" },
    ["gross", "fees", "refunded", "net"].map((k) => h("div", { class: "kpi" }, h("div", { class: "label" }, t(k)), h("div", { class: "value", "data-kpi": k }, money(s[k]))))));
  mount(main, h("h1", {}, t("overview")), kpis(t("today"), sum.today), kpis(t("last30"), sum.month),
    barChart(days, t("net_30")), h("h2", {}, t("per_org")),
    table([[t("organization")], [t("today"), "num"], [t("gross") + " 30 j", "num"], [t("fees"), "num"], [t("refunded"), "num"], [t("net"), "num"]], rows, { id: "per-org" }),
    h("h2", {}, t("attention")), await attention(orgs));
}
async function attention(orgs) {
  const items = [];
  for (const org of orgs) if (!org.charges_enabled || (org.requirements_due || []).length)
    items.push(h("li", {}, `${t("onboarding_due")} : `, h("a", { href: `/console/organizations/${org.id}`, "data-nav": true }, org.name),
      (org.requirements_due || []).length ? ` — ${org.requirements_due.join(", ")}` : ""));
  if (isPlatform()) {
    const [events, recon] = await Promise.all([api("GET", "/v1/ops/events?status=failed").catch(() => null), api("GET", "/v1/banking/reconciliation").catch(() => null)]);
    if (events && events.data.length) items.push(h("li", {}, h("a", { href: "/console/operations", "data-nav": true }, `${t("failed_events")} : ${events.data.length}`)));
    const old = Date.now() - 3 * 86400000;
    const late = recon ? recon.unmatched_payouts.filter((p) => p.arrival_date && Date.parse(p.arrival_date) < old) : [];
    if (late.length) items.push(h("li", {}, h("a", { href: "/console/banking", "data-nav": true }, `${t("unmatched_payouts")} : ${late.length}`)));
  }
  items.push(...(await failedPayouts(orgs)));
  const recent = await Promise.all(orgs.slice(0, 20).map((o) => api("GET", `/v1/payments?limit=100${isPlatform() ? "&organization_id=" + o.id : ""}`).catch(() => ({ data: [] }))));
  const failed = recent.flatMap((page) => page.data.flatMap((p) => p.refunds.filter((r) => r.status === "failed").map((r) => [p, r])));
  for (const [p, r] of failed) items.push(h("li", {}, `${t("failed_refunds")} : `, h("a", { href: `/console/organizations/${p.organization_id}/payments/${p.id}`, "data-nav": true }, `${money(r.amount, r.currency)} (${r.failure_reason || ""})`)));
  return items.length ? h("ul", { class: "card", id: "attention" }, items) : h("p", { class: "card muted", id: "attention" }, t("nothing"));
}

// ---------- organisations ----------
async function organizationsPage(main) {
  const orgs = await listAll("/v1/organizations");
  const rows = orgs.map((o) => h("tr", {}, h("td", {}, h("a", { href: `/console/organizations/${o.id}`, "data-nav": true }, o.name)),
    h("td", {}, badge(o.charges_enabled, t("charges"), t("onboarding_due"))), h("td", {}, o.charge_model), num(`${o.fee_percent_bps} pb`)));
  const inputs = { name: h("input", { required: true }), email: h("input", { type: "email", required: true }), country: h("input", { value: "FR", size: 3 }),
    business_type: h("select", {}, ["non_profit", "company", "individual"].map((v) => h("option", { value: v }, v))),
    line1: h("input", {}), city: h("input", {}), postal_code: h("input", { size: 6 }) };
  const form = h("form", { class: "card inline", id: "create-org", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const org = await api("POST", "/v1/organizations", { name: inputs.name.value, email: inputs.email.value, country: inputs.country.value,
        business_type: inputs.business_type.value, address: { line1: inputs.line1.value, city: inputs.city.value, postal_code: inputs.postal_code.value } });
      go(`/console/organizations/${org.id}`);
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, field(t("name"), inputs.name, "name"), field(t("email"), inputs.email, "email"), field(t("country"), inputs.country, "country"),
    field(t("business_type"), inputs.business_type, "business_type"), field(t("address"), inputs.line1, "address.line1"),
    field(t("city"), inputs.city, "address.city"), field(t("postal_code"), inputs.postal_code, "address.postal_code"), h("button", { type: "submit" }, t("create")));
  mount(main, h("h1", {}, t("organizations")), table([[t("name")], [t("status")], [t("charge_model")], [t("fees"), "num"]], rows, { id: "organizations" }),
    h("h2", {}, t("create_org")), form);
}
function orgTabs(orgId) {
  const items = [[`/console/organizations/${orgId}`, t("details")]];
  if (state.member.role !== "agent") items.push([`/console/organizations/${orgId}/sales`, t("sales")], [`/console/organizations/${orgId}/terminal`, t("terminal")],
    [`/console/organizations/${orgId}/payouts`, t("payouts")], [`/console/organizations/${orgId}/books`, t("books")]);
  return h("nav", { class: "actions", "aria-label": t("organization") }, items.map(([href, label]) => h("a", { href, "data-nav": true, "aria-current": location.pathname === href ? "page" : null }, label)));
}
async function organizationPage(main, orgId) {
  const params = new URLSearchParams(location.search);
  const org = await api("GET", `/v1/organizations/${orgId}`);
  const account = org.stripe_account_id ? await api("GET", `/v1/organizations/${orgId}/stripe-account${params.has("onboarding") ? "?refresh=true" : ""}`) : null;
  const status = account || org;
  const linkBox = h("p", { id: "onboarding-link" });
  const here = `${location.origin}/console/organizations/${orgId}`;
  const onboarding = h("section", { class: "card", id: "onboarding" }, h("h2", {}, t("onboarding")),
    h("dl", { class: "facts" },
      h("dt", {}, "Stripe"), h("dd", {}, org.stripe_account_id || "—"),
      h("dt", {}, t("charges")), h("dd", {}, badge(status.charges_enabled, "✓", "✗")),
      h("dt", {}, t("payouts")), h("dd", {}, badge(status.payouts_enabled, "✓", "✗")),
      h("dt", {}, t("details")), h("dd", {}, badge(status.details_submitted, "✓", "✗")),
      h("dt", {}, t("requirements")), h("dd", { id: "requirements" }, (status.requirements_due || []).join(", ") || "—")),
    h("div", { class: "actions" },
      org.stripe_account_id ? null : h("button", { type: "button", id: "create-account", onclick: async () => { await api("POST", `/v1/organizations/${orgId}/stripe-account`, {}); render(); } }, t("create_account")),
      org.stripe_account_id ? h("button", { type: "button", id: "new-onboarding-link", onclick: async () => {
        const link = await api("POST", `/v1/organizations/${orgId}/onboarding-link`, { return_url: here + "?onboarding=done", refresh_url: here + "?onboarding=refresh" });
        linkBox.replaceChildren(h("a", { href: link.url, id: "open-onboarding" }, t("open_link")), ` (${when(link.expires_at)})`);
      } }, t("onboarding_link")) : null,
      org.stripe_account_id ? h("button", { type: "button", class: "secondary", onclick: () => go(`/console/organizations/${orgId}?onboarding=refresh`) }, t("refresh")) : null),
    linkBox);
  const sections = [h("h1", {}, org.name), orgTabs(orgId), onboarding];
  if (isPlatform()) sections.push(feePolicy(org));
  sections.push(await membersSection(orgId));
  mount(main, ...sections);
}
function feePolicy(org) {
  const model = h("select", {}, ["direct", "destination"].map((v) => h("option", { value: v, selected: v === org.charge_model }, v)));
  const bps = h("input", { type: "number", min: 0, max: 10000, value: org.fee_percent_bps, inputmode: "numeric" });
  const minimum = h("input", { value: (org.fee_minimum / 100).toFixed(2).replace(".", lang === "fr" ? "," : "."), inputmode: "decimal" });
  const form = h("form", { class: "card inline", id: "fee-policy", onsubmit: async (event) => {
    event.preventDefault();
    const fee = parseEuros(minimum.value);
    try {
      await api("PATCH", `/v1/organizations/${org.id}`, { charge_model: model.value, fee_percent_bps: Number(bps.value), fee_minimum: Number.isNaN(fee) ? -1 : fee });
      toast(t("saved"));
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, t("fee_policy")), field(t("charge_model"), model, "charge_model"), field(t("fee_percent_bps"), bps, "fee_percent_bps"),
    field(t("fee_minimum"), minimum, "fee_minimum"), h("button", { type: "submit" }, t("save")));
  return form;
}
async function membersSection(orgId) {
  const members = await listAll(`/v1/organizations/${orgId}/members`);
  const rows = members.map((m) => {
    const role = h("select", { "aria-label": `${t("role")} ${m.email}`, onchange: async () => { await api("PATCH", `/v1/organizations/${orgId}/members/${m.id}`, { role: role.value }); toast(t("saved")); } },
      ["agent", "org_admin"].map((r) => h("option", { value: r, selected: r === m.role }, t(r))));
    return h("tr", {}, h("td", {}, m.name), h("td", {}, m.email), h("td", {}, role),
      h("td", {}, h("span", { class: "badge " + (m.disabled ? "bad" : "ok") }, m.disabled ? t("disabled") : t("active"))),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => { await api("PATCH", `/v1/organizations/${orgId}/members/${m.id}`, { disabled: !m.disabled }); render(); } }, m.disabled ? t("enable") : t("disable"))));
  });
  const inputs = { name: h("input", { required: true }), email: h("input", { type: "email", required: true }), password: h("input", { type: "password", autocomplete: "new-password", required: true }),
    role: h("select", {}, ["agent", "org_admin"].map((r) => h("option", { value: r }, t(r)))) };
  const form = h("form", { class: "card inline", id: "add-member", onsubmit: async (event) => {
    event.preventDefault();
    try { await api("POST", `/v1/organizations/${orgId}/members`, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value]))); render(); }
    catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, field(t("name"), inputs.name, "name"), field(t("email"), inputs.email, "email"), field(t("password"), inputs.password, "password"),
    field(t("role"), inputs.role, "role"), h("button", { type: "submit" }, t("add")));
  return h("section", {}, h("h2", {}, t("members")), table([[t("name")], [t("email")], [t("role")], [t("status")], [""]], rows, { id: "members" }), h("h3", {}, t("add_member")), form);
}

// ---------- sales ----------
const METHODS = ["card_present", "card", "sepa_debit", "cash"];
const PAYMENT_STATUSES = ["succeeded", "processing", "requires_payment_method", "requires_capture", "canceled", "failed", "pending"];
async function salesPage(main, orgId) {
  const org = await api("GET", `/v1/organizations/${orgId}`);
  const scope = isPlatform() ? `&organization_id=${orgId}` : "";
  const members = isAdmin() ? await listAll(`/v1/organizations/${orgId}/members`) : [];
  const names = Object.fromEntries(members.map((m) => [m.id, m.name]));
  const params = new URLSearchParams(location.search);
  const agent = h("select", {}, h("option", { value: "" }, t("all")), members.map((m) => h("option", { value: m.id, selected: params.get("agent") === m.id }, m.name)));
  const day = h("input", { type: "date", value: params.get("day") || "" });
  const method = h("select", {}, h("option", { value: "" }, t("all")), METHODS.map((v) => h("option", { value: v, selected: params.get("method") === v }, v)));
  const status = h("select", {}, h("option", { value: "" }, t("all")), PAYMENT_STATUSES.map((v) => h("option", { value: v, selected: params.get("status") === v }, v)));
  const body = h("tbody", {});
  const seen = new Map();  // payment id -> the status last shown: the ranking follows new sales and changed ones
  let first = true;
  const rankingBox = h("div", {});
  const updateRanking = async () => { if (isAdmin()) rankingBox.replaceChildren(await ranking(orgId, org, members)); };
  async function refresh(background) {
    const window = day.value ? `&from=${day.value}&to=${day.value}` : "";  // the organisation's local day, as the stats
    const page = await api("GET", `/v1/payments?limit=100${scope}${agent.value ? "&member_id=" + agent.value : ""}${status.value ? "&status=" + status.value : ""}${window}`, undefined, { background });
    const shown = page.data.filter((p) => (!method.value || p.method === method.value) && (!day.value || p.local_date === day.value));
    let arrived = false, changed = false;
    body.replaceChildren(...(shown.length ? shown.map((p) => {
      const fresh = !first && !seen.has(p.id);
      arrived = arrived || fresh;
      changed = changed || (seen.has(p.id) && seen.get(p.id) !== p.status);
      seen.set(p.id, p.status);
      return h("tr", { class: fresh ? "new" : null, "data-payment": p.id },
        h("td", {}, h("a", { href: `/console/organizations/${orgId}/payments/${p.id}`, "data-nav": true }, when(p.created_at))),
        num(money(p.amount, p.currency)), h("td", {}, p.method, p.local_id ? h("span", { class: "badge" }, " " + t("offline")) : null),
        h("td", {}, h("span", { class: "badge " + (p.status === "succeeded" ? "ok" : p.status === "failed" ? "bad" : "") }, p.status)),
        num(p.amount_refunded ? money(p.amount_refunded, p.currency) : ""), h("td", {}, names[p.member_id] || (p.member_id === state.member.id ? state.member.email : "")));
    }) : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("no_data")))]));
    first = false;
    if (arrived || changed) await updateRanking();
  }
  const onFilter = () => {
    const q = qs({ agent: agent.value, day: day.value, method: method.value, status: status.value });
    history.replaceState({}, "", location.pathname + q); seen.clear(); first = true; refresh(false);
  };
  [agent, day, method, status].forEach((input) => input.addEventListener("change", onFilter));
  const filters = h("form", { class: "card inline", id: "filters", onsubmit: (e) => e.preventDefault() },
    isAdmin() ? field(t("agent"), agent) : null, field(t("day"), day), field(t("method"), method), field(t("status"), status));
  const feed = h("div", { class: "table-wrap" }, h("table", { id: "feed", "aria-live": "polite" },
    h("thead", {}, h("tr", {}, [[t("date")], [t("amount"), "num"], [t("method")], [t("status")], [t("refunded"), "num"], [t("agent")]].map(([l, c]) => h("th", { scope: "col", class: c }, l)))), body));
  mount(main, h("h1", {}, `${t("sales")} — ${org.name}`), orgTabs(orgId), filters, h("p", { class: "muted" }, "⟳ " + t("live")), feed, rankingBox);
  await refresh(false);
  if (main.isConnected) state.timers.push(setInterval(() => refresh(true).catch(() => {}), 3000));
  await updateRanking();
}
async function ranking(orgId, org, members) {
  const zone = org.timezone || "Europe/Paris";
  const from = dayIn(zone, -29), to = dayIn(zone);
  const scope = isPlatform() ? `&organization_id=${orgId}` : "";
  const stats = await Promise.all(members.map((m) => api("GET", `/v1/members/${m.id}/stats?from=${from}&to=${to}${scope}`).catch(() => ({ totals: {} }))));
  const ranked = members.map((m, i) => [m, stats[i].totals]).filter(([, s]) => s.count).sort((a, b) => b[1].gross - a[1].gross);
  const max = Math.max(1, ...ranked.map(([, s]) => s.gross));
  const chart = svg("svg", { viewBox: `0 0 400 ${Math.max(ranked.length, 1) * 22}`, role: "img", "aria-label": t("ranking") },
    ranked.map(([m, s], i) => [svg("rect", { class: "bar", x: 120, y: i * 22 + 3, height: 16, width: Math.max(1, Math.round((s.gross / max) * 270)) }),
      svg("text", { x: 0, y: i * 22 + 15 }, document.createTextNode(m.name.slice(0, 20)))]));
  return h("section", { id: "ranking" }, h("h2", {}, t("ranking")), h("div", { class: "chart card" }, chart),
    table([[t("agent")], [t("count"), "num"], [t("gross"), "num"], [t("refunded"), "num"], [t("net"), "num"]],
      ranked.map(([m, s]) => h("tr", {}, h("td", {}, m.name), num(String(s.count)), num(money(s.gross)), num(money(s.refunded)), num(money(s.net))))));
}
async function paymentPage(main, orgId, paymentId) {
  const scope = isPlatform() ? `?organization_id=${orgId}` : "";
  const p = await api("GET", `/v1/payments/${paymentId}${scope}`);
  if (p.organization_id !== orgId) throw new Problem(404, {});
  const refunds = table([[t("date")], [t("amount"), "num"], [t("reason")], [t("status")]],
    p.refunds.map((r) => h("tr", {}, h("td", {}, when(r.created_at)), num(money(r.amount, r.currency)), h("td", {}, r.reason || ""),
      h("td", {}, h("span", { class: "badge " + (r.status === "failed" ? "bad" : r.status === "succeeded" ? "ok" : "") }, r.status), r.failure_reason ? " " + r.failure_reason : ""))), { id: "refunds" });
  const sections = [h("h1", {}, `${t("payment")} ${money(p.amount, p.currency)}`), orgTabs(orgId),
    h("section", { class: "card" }, h("dl", { class: "facts", id: "payment" },
      [[t("status"), p.status], [t("method"), p.method], [t("date"), when(p.created_at)], [t("fees"), money(p.application_fee_amount, p.currency)],
        [t("refunded"), money(p.amount_refunded, p.currency)], ["Stripe", p.stripe_payment_intent_id || "—"], ["Description", p.description || "—"]]
        .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h("h2", {}, t("refunds")), refunds];
  const remaining = p.amount_captured - p.amount_refunded;
  if (isAdmin() && p.status === "succeeded" && remaining > 0) sections.push(refundForm(p, remaining));
  mount(main, ...sections);
}
function refundForm(p, remaining) {
  const amount = h("input", { inputmode: "decimal", placeholder: money(remaining, p.currency) });
  const reason = h("select", {}, h("option", { value: "" }, "—"), ["requested_by_customer", "duplicate", "fraudulent"].map((v) => h("option", { value: v }, v)));
  const dialog = h("dialog", { id: "confirm-refund", "aria-labelledby": "confirm-refund-title" });
  const form = h("form", { class: "card inline", id: "refund-form", onsubmit: (event) => {
    event.preventDefault();
    const cents = amount.value.trim() ? parseEuros(amount.value) : remaining;
    if (Number.isNaN(cents) || cents < 1 || cents > remaining) { showErrors(form, new Problem(400, { errors: [{ field: "amount", message: `1 … ${money(remaining, p.currency)}` }] })); return; }
    const key = crypto.randomUUID();  // one key per confirmation: a double click refunds once
    const yes = h("button", { type: "button", class: "danger", id: "confirm-refund-yes", onclick: async () => {
      yes.disabled = true;
      try {
        await api("POST", `/v1/payments/${p.id}/refunds`, { amount: cents, reason: reason.value || undefined }, { idempotencyKey: key });
        dialog.close(); toast(t("refund_done")); render();
      } catch (error) { dialog.close(); if (error instanceof Problem) showErrors(form, error); else throw error; }
    } }, t("confirm"));
    dialog.replaceChildren(h("p", { id: "confirm-refund-title" }, `${t("confirm_refund")} ${money(cents, p.currency)} ?`),
      h("div", { class: "actions" }, yes, h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, t("cancel"))));
    dialog.showModal(); yes.focus();
  } }, h("h2", {}, t("refund")), field(`${t("amount")} (${t("whole_amount")} : ${money(remaining, p.currency)})`, amount, "amount"),
    field(t("reason"), reason, "reason"), h("button", { type: "submit", id: "refund" }, t("refund")), dialog);
  return form;
}

// ---------- terminal ----------
async function terminalPage(main, orgId) {
  const org = await api("GET", `/v1/organizations/${orgId}`);
  const scope = isPlatform() ? `?organization_id=${orgId}` : "";
  const [locations, readers] = await Promise.all([listAll(`/v1/terminal/locations${scope}`), listAll(`/v1/terminal/readers${scope}`)]);
  const names = Object.fromEntries(locations.map((l) => [l.id, l.display_name]));
  const loc = { display_name: h("input", { required: true }), line1: h("input", {}), city: h("input", {}), postal_code: h("input", { size: 6 }) };
  const locForm = h("form", { class: "card inline", id: "add-location", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/v1/terminal/locations", { display_name: loc.display_name.value, address: { line1: loc.line1.value, city: loc.city.value, postal_code: loc.postal_code.value, country: org.country }, organization_id: isPlatform() ? orgId : undefined });
      render();
    } catch (error) { if (error instanceof Problem) showErrors(locForm, error); else throw error; }
  } }, field(t("name"), loc.display_name, "display_name"), field(t("address"), loc.line1, "address.line1"), field(t("city"), loc.city, "address.city"),
    field(t("postal_code"), loc.postal_code, "address.postal_code"), h("button", { type: "submit" }, t("add")));
  const reader = { registration_code: h("input", { required: true }), label: h("input", {}), location_id: h("select", {}, locations.map((l) => h("option", { value: l.id }, l.display_name))) };
  const readerForm = h("form", { class: "card inline", id: "add-reader", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/v1/terminal/readers", { registration_code: reader.registration_code.value, label: reader.label.value, location_id: reader.location_id.value, organization_id: isPlatform() ? orgId : undefined });
      render();
    } catch (error) { if (error instanceof Problem) showErrors(readerForm, error); else throw error; }
  } }, field(t("registration_code"), reader.registration_code, "registration_code"), field(t("label"), reader.label, "label"),
    field(t("location"), reader.location_id, "location_id"), h("button", { type: "submit" }, t("add")));
  mount(main, h("h1", {}, `${t("terminal")} — ${org.name}`), orgTabs(orgId),
    h("h2", {}, t("locations")), table([[t("name")], [t("address")], ["Stripe"]], locations.map((l) => h("tr", {}, h("td", {}, l.display_name),
      h("td", {}, [l.address && l.address.line1, l.address && l.address.city].filter(Boolean).join(", ")), h("td", {}, l.stripe_location_id || ""))), { id: "locations" }),
    isAdmin() ? locForm : null,
    h("h2", {}, t("readers")), table([[t("label")], [t("location")], [t("status")]], readers.map((r) => h("tr", {}, h("td", {}, r.label || r.id),
      h("td", {}, names[r.location_id] || ""), h("td", {}, r.status || ""))), { id: "readers" }),
    isAdmin() && locations.length ? readerForm : null);
}

// ---------- banking ----------
async function bankingPage(main) {
  const [transactions, payouts, recon, rules, orgs] = await Promise.all([
    listAll("/v1/banking/transactions"), listAll("/v1/banking/payouts"), api("GET", "/v1/banking/reconciliation"),
    api("GET", "/v1/banking/allocation-rules"), listAll("/v1/organizations")]);
  const orgName = Object.fromEntries(orgs.map((o) => [o.id, o.name]));
  const action = (label, path) => h("button", { type: "button", class: "secondary", onclick: async () => { const r = await api("POST", path, {}); toast(summary(r)); render(); } }, label);
  const payoutRows = payouts.map((p) => h("tr", { "data-payout": p.stripe_payout_id, class: p.status === "failed" ? "failed" : null }, h("td", {}, p.stripe_payout_id),
    h("td", {}, p.organization_id ? h("a", { href: `/console/organizations/${p.organization_id}/payouts`, "data-nav": true }, orgName[p.organization_id] || p.organization_id) : ""),
    num(money(p.amount, p.currency)), h("td", {}, payoutStatus(p)), h("td", {}, when(p.arrival_date)), h("td", {}, badge(p.reconciled, t("reconciled"), t("not_reconciled")))));
  const txnRows = transactions.map((x) => h("tr", {}, h("td", {}, when(x.settled_at)), h("td", {}, x.label || ""), h("td", {}, x.reference || ""), h("td", {}, x.side),
    num(money(x.amount, x.currency)), h("td", {}, badge(x.reconciled, t("reconciled"), t("not_reconciled")))));
  const matchRows = recon.matches.map((m) => h("tr", {}, h("td", {}, m.rule + (m.manual ? " ✋" : "")), h("td", {}, m.explanation), num(money(m.payouts_amount, m.currency)),
    num(money(m.bank_amount, m.currency)), num(money(m.difference, m.currency)),
    h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => { await api("DELETE", `/v1/banking/reconciliation/matches/${m.id}`); render(); } }, t("unmatch")))));
  const payoutChoice = h("select", { multiple: true, size: 3 }, recon.unmatched_payouts.map((p) => h("option", { value: p.id }, `${p.stripe_payout_id} ${money(p.amount, p.currency)}`)));
  const creditChoice = h("select", {}, recon.unmatched_credits.map((c) => h("option", { value: c.id }, `${c.label || ""} ${c.reference || ""} ${money(c.amount, c.currency)}`)));
  const note = h("input", {});
  const matchForm = h("form", { class: "card inline", id: "manual-match", onsubmit: async (event) => {
    event.preventDefault();
    try { await api("POST", "/v1/banking/reconciliation/matches", { payout_ids: [...payoutChoice.selectedOptions].map((o) => o.value), bank_transaction_id: creditChoice.value, note: note.value }); render(); }
    catch (error) { if (error instanceof Problem) showErrors(matchForm, error); else throw error; }
  } }, field(t("unmatched_payouts"), payoutChoice, "payout_ids"), field(t("credit"), creditChoice, "bank_transaction_id"), field("Note", note, "note"), h("button", { type: "submit" }, t("match")));
  mount(main, h("h1", {}, t("banking")),
    h("div", { class: "actions" }, action(t("sync_bank"), "/v1/banking/sync"), action(t("sync_payouts"), "/v1/banking/payouts/sync"), action(t("run_reconciliation"), "/v1/banking/reconciliation/run")),
    h("h2", {}, t("payouts")), table([[t("payout")], [t("organization")], [t("amount"), "num"], [t("status")], [t("arrival")], [t("reconciliation")]], payoutRows, { id: "payouts" }),
    h("h2", {}, t("matches")), table([[t("rule")], [t("explanation")], [t("payouts"), "num"], [t("credit"), "num"], [t("difference"), "num"], [""]], matchRows, { id: "matches" }),
    h("h2", {}, `${t("unmatched_payouts")} (${recon.unmatched_payouts.length}) · ${t("unmatched_credits")} (${recon.unmatched_credits.length})`),
    recon.unmatched_payouts.length && recon.unmatched_credits.length ? matchForm : null,
    h("h2", {}, t("transactions")), table([[t("date")], [t("bank_label")], [t("reference")], [t("side")], [t("amount"), "num"], [t("reconciliation")]], txnRows, { id: "transactions" }),
    rulesEditor(rules, orgs), dailyReport(), await pennylaneSection("/v1/banking/pennylane", true, orgName));
}
function rulesEditor(current, orgs) {
  const rulesBody = h("div", {}), entitiesBody = h("div", {});
  const orgSelect = (value) => h("select", {}, h("option", { value: "" }, t("any_org")), orgs.map((o) => h("option", { value: o.id, selected: o.id === value }, o.name)));
  const ruleRow = (r = {}) => { const row = h("div", { class: "inline rule" }); row.append(
    field(t("organization"), orgSelect(r.organization_id)), field(t("entity"), h("input", { value: r.entity || "" })),
    field(t("share_bps"), h("input", { type: "number", value: r.share_bps ?? "" })), h("button", { type: "button", class: "secondary", onclick: () => row.remove() }, t("remove"))); row.className = "inline rule actions"; return row; };
  const entityRow = (e = {}) => { const row = h("div", { class: "actions entity" }); row.append(
    field(t("entity"), h("input", { value: e.entity || "" })), field(t("tax_rate_bps"), h("input", { type: "number", value: e.tax_rate_bps ?? "" })),
    h("button", { type: "button", class: "secondary", onclick: () => row.remove() }, t("remove"))); return row; };
  current.rules.forEach((r) => rulesBody.append(ruleRow(r)));
  current.entities.forEach((e) => entitiesBody.append(entityRow(e)));
  const number = (input) => (input.value.trim() === "" ? null : Number(input.value));
  const form = h("form", { class: "card", id: "allocation-rules", onsubmit: async (event) => {
    event.preventDefault();
    // Each input names the API's field (rules[0].share_bps): the problem's errors land beside it.
    const rules = [...rulesBody.children].map((row, i) => { const [org, entity, share] = row.querySelectorAll("select, input");
      org.dataset.field = `rules[${i}].organization_id`; entity.dataset.field = `rules[${i}].entity`; share.dataset.field = `rules[${i}].share_bps`;
      return { organization_id: org.value || undefined, entity: entity.value, share_bps: number(share) }; });
    const entities = [...entitiesBody.children].map((row, i) => { const [entity, rate] = row.querySelectorAll("input");
      entity.dataset.field = `entities[${i}].entity`; rate.dataset.field = `entities[${i}].tax_rate_bps`;
      return { entity: entity.value, tax_rate_bps: number(rate) }; });
    try { await api("PUT", "/v1/banking/allocation-rules", { rules, entities }); toast(t("saved")); }
    catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, t("allocation")), rulesBody, h("button", { type: "button", class: "secondary", id: "add-rule", onclick: () => rulesBody.append(ruleRow()) }, t("add_rule")),
    h("h3", {}, t("entity")), entitiesBody, h("button", { type: "button", class: "secondary", onclick: () => entitiesBody.append(entityRow()) }, t("add_entity")),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "save-rules" }, t("save"))));
  return form;
}
function dailyReport() {
  const params = new URLSearchParams(location.search);
  const date = h("input", { type: "date", value: params.get("date") || dayIn("Europe/Paris") });
  const out = h("div", { id: "daily-report" });
  const csv = h("a", { id: "download-csv", download: true }, t("download_csv"));
  const fec = h("a", { id: "download-fec", download: true }, t("download_fec"));
  async function show() {
    csv.href = `/v1/reports/daily${qs({ date: date.value, format: "csv" })}`;
    fec.href = `/v1/banking/exports/fec${qs({ from: date.value, to: date.value })}`;
    const report = await api("GET", `/v1/reports/daily${qs({ date: date.value })}`);
    const cur = report.currency;
    out.replaceChildren(
      table([[t("organization")], [t("count"), "num"], [t("gross"), "num"], [t("fees"), "num"], [t("refunds"), "num"], [t("net"), "num"], [t("payouts"), "num"], [t("bank_credits"), "num"], [t("reconciliation")]],
        report.organizations.map((o) => h("tr", {}, h("td", {}, o.organization_name || o.organization_id), num(String(o.count)), num(money(o.gross, cur)), num(money(o.fees, cur)),
          num(money(o.refunds, cur)), num(money(o.net, cur)), num(money(o.payouts, cur)), num(money(o.bank_credits, cur)), h("td", {}, badge(o.reconciled, t("reconciled"), money(o.difference, cur))))), { caption: `${report.date} (${report.timezone})` }),
      h("h3", {}, t("allocation")),
      table([[t("entity")], [t("revenue"), "num"], [t("tax_rate_bps"), "num"], [t("estimated_tax"), "num"]],
        report.allocation.map((e) => h("tr", {}, h("td", {}, e.entity), num(money(e.revenue, cur)), num(String(e.tax_rate_bps)), num(money(e.estimated_tax, cur))))),
      h("p", {}, `${t("gross")} ${money(report.totals.gross, cur)} · ${t("net")} ${money(report.totals.net, cur)} · ${t("estimated_tax")} ${money(report.tax.estimated_total, cur)}`));
  }
  date.addEventListener("change", () => { history.replaceState({}, "", location.pathname + qs({ date: date.value })); show(); });
  const send = h("button", { type: "button", class: "secondary", id: "send-slack", onclick: async () => {
    const r = await api("POST", "/v1/reports/daily/send", { date: date.value }); toast(r.sent || r.already_sent ? t("sent") : r.last_error || "…");
  } }, t("send_slack"));
  const section = h("section", { class: "card", id: "report" }, h("h2", {}, t("daily_report")),
    h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); show(); } }, field(t("date"), date), h("button", { type: "submit" }, t("show"))),
    h("div", { class: "actions" }, send, csv, fec), out);
  show().catch((error) => { out.textContent = error.message; });
  return section;
}

// ---------- operations ----------
async function operationsPage(main) {
  const params = new URLSearchParams(location.search);
  const chosen = params.get("status") || "failed";
  const status = h("select", { onchange: () => go(location.pathname + qs({ status: status.value })) },
    ["failed", "pending", "applied", "ignored"].map((s) => h("option", { value: s, selected: s === chosen }, s)));
  const page = await api("GET", `/v1/ops/events${qs({ status: chosen })}`);
  const replay = async (body) => { const r = await api("POST", "/v1/ops/events/replay", body); toast(`${t("replay")}: ${r.replayed} → ${r.applied} ✓ ${r.failed} ✗`); render(); };
  const rows = page.data.map((e) => h("tr", {}, h("td", {}, when(e.received_at)), h("td", {}, e.service), h("td", {}, e.type), h("td", {}, e.event_id),
    num(String(e.attempts)), h("td", {}, e.last_error || ""), h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => replay({ service: e.service, event_id: e.event_id }) }, t("replay")))));
  mount(main, h("h1", {}, t("operations")), h("form", { class: "card inline", onsubmit: (e) => e.preventDefault() }, field(t("status"), status),
    h("button", { type: "button", id: "replay-all", onclick: () => replay({}) }, t("replay_all"))),
    h("h2", {}, t("events")), table([[t("received")], [t("service")], [t("type")], ["id"], [t("attempts"), "num"], [t("error")], [""]], rows, { id: "events" }),
    h("p", { class: "muted" }, Object.entries(page.services).map(([k, v]) => `${k}: ${v}`).join(" · ")));
}

// ---------- audit trail ----------
Object.assign(WORDS, {
  audit: ["Journal d'audit", "Audit trail"], actor: ["Auteur", "Actor"], action: ["Action", "Action"], targets: ["Objets", "Targets"],
  change: ["Avant → après", "Before → after"], request: ["Requête", "Request"], first_page: ["Première page", "First page"],
  next_page: ["Page suivante", "Next page"], filter: ["Filtrer", "Filter"], all_orgs: ["toutes", "all"],
});
ROUTES.push([/^\/console\/audit$/, auditPage, "admin"]);
const AUDIT_FILTERS = ["organization_id", "actor_id", "action", "from", "to"];
const dayStart = (day) => (day ? `${day}T00:00:00Z` : "");
async function auditPage(main) {
  const params = new URLSearchParams(location.search);
  const chosen = Object.fromEntries(AUDIT_FILTERS.map((k) => [k, params.get(k) || ""]));
  const orgs = isPlatform() ? await listAll("/v1/organizations") : [];
  const orgName = Object.fromEntries(orgs.map((o) => [o.id, o.name]));
  const query = { ...chosen, from: dayStart(chosen.from), to: dayStart(chosen.to), cursor: params.get("cursor") || "", limit: "50" };
  const page = await api("GET", `/v1/audit${qs(query)}`);
  const inputs = {
    organization_id: isPlatform() ? h("select", {}, h("option", { value: "" }, t("all_orgs")), orgs.map((o) => h("option", { value: o.id, selected: o.id === chosen.organization_id }, o.name))) : null,
    actor_id: h("input", { value: chosen.actor_id, size: 36 }), action: h("input", { value: chosen.action, placeholder: "payment.refunded" }),
    from: h("input", { type: "date", value: chosen.from }), to: h("input", { type: "date", value: chosen.to }),
  };
  const form = h("form", { class: "card inline", id: "audit-filters", onsubmit: (event) => {
    event.preventDefault();
    go(location.pathname + qs(Object.fromEntries(AUDIT_FILTERS.map((k) => [k, inputs[k] ? inputs[k].value : ""]))));
  } }, inputs.organization_id ? field(t("organization"), inputs.organization_id, "organization_id") : null, field(t("actor"), inputs.actor_id, "actor_id"),
    field(t("action"), inputs.action, "action"), field(t("from"), inputs.from, "from"), field(t("to"), inputs.to, "to"), h("button", { type: "submit" }, t("filter")));
  const pairs = (object) => Object.entries(object || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  const change = (e) => (e.before || e.after ? `${pairs(e.before) || "—"} → ${pairs(e.after) || "—"}` : "");
  const rows = page.data.map((e) => h("tr", { "data-entry": e.id }, h("td", {}, when(e.occurred_at)),
    isPlatform() ? h("td", {}, orgName[e.organization_id] || e.organization_id || "—") : null,
    h("td", {}, h("span", { title: e.actor_id }, `${t(e.actor_role)} ${e.actor_id.slice(0, 8)}`)), h("td", {}, h("code", {}, e.action)),
    h("td", {}, Object.entries(e.targets).map(([k, v]) => h("div", { title: v }, `${k}: ${v.length > 20 ? v.slice(0, 8) + "…" : v}`))), h("td", {}, change(e)), h("td", { class: "muted" }, h("span", { title: `trace ${e.trace_id || "—"}` }, (e.request_id || "").slice(0, 12)))));
  const headers = [[t("date")], isPlatform() ? [t("organization")] : null, [t("actor")], [t("action")], [t("targets")], [t("change")], [t("request")]].filter(Boolean);
  const paging = h("div", { class: "actions" },
    params.get("cursor") ? h("a", { href: location.pathname + qs(chosen), "data-nav": true, id: "audit-first" }, t("first_page")) : null,
    page.next_cursor ? h("a", { href: location.pathname + qs({ ...chosen, cursor: page.next_cursor }), "data-nav": true, id: "audit-next" }, t("next_page")) : null);
  mount(main, h("h1", {}, t("audit")), form, table(headers, rows, { id: "audit" }), paging);
}

// ---------- disputes ----------
// Chargebacks of card payments: each with its evidence due date; open ones take evidence (staged,
// or submitted to the bank). Platform admins see every organisation's, org admins their own.
Object.assign(WORDS, {
  disputes: ["Litiges", "Disputes"], due_by: ["Preuves à fournir avant le", "Evidence due by"],
  answer: ["Répondre", "Answer"], evidence: ["Preuves", "Evidence"], submitted: ["Soumissions", "Submissions"],
  product_description: ["Description du produit", "Product description"],
  customer_communication: ["Échanges avec le client", "Customer communication"],
  uncategorized_text: ["Autres éléments", "Other evidence"], submit_now: ["Soumettre à la banque maintenant", "Submit to the bank now"],
  send_evidence: ["Envoyer les preuves", "Send the evidence"], evidence_sent: ["Preuves envoyées.", "Evidence sent."],
  evidence_staged: ["Preuves enregistrées (non soumises).", "Evidence saved (not submitted)."],
  reversed: ["Repris", "Taken back"],
});
const DISPUTE_OPEN = ["needs_response", "warning_needs_response"];
const disputeBadge = (status) => h("span", { class: "badge " + (status === "won" ? "ok" : status === "lost" ? "bad" : DISPUTE_OPEN.includes(status) ? "warn" : "") }, status);
async function disputesPage(main) {
  const orgFilter = new URLSearchParams(location.search).get("organization_id") || "";
  const orgs = isPlatform() ? await myOrganizations() : [];
  const names = Object.fromEntries(orgs.map((o) => [o.id, o.name]));
  const disputes = await listAll(`/v1/disputes${qs({ organization_id: orgFilter })}`);
  const chooser = isPlatform() ? h("form", { class: "card inline", onsubmit: (e) => e.preventDefault() }, field(t("organization"),
    h("select", { id: "dispute-org", onchange: (e) => go(location.pathname + qs({ organization_id: e.target.value })) },
      h("option", { value: "" }, t("all")), orgs.map((o) => h("option", { value: o.id, selected: o.id === orgFilter }, o.name))))) : null;
  const answer = h("div", { id: "dispute-answer" });
  const soon = Date.now() + 3 * 86_400_000;
  const rows = disputes.map((d) => h("tr", { id: `dispute-${d.id}` },
    h("td", {}, when(d.created_at)),
    isPlatform() ? h("td", {}, names[d.organization_id] || d.organization_id) : null,
    h("td", {}, h("a", { href: `/console/organizations/${d.organization_id}/payments/${d.payment_id}`, "data-nav": true }, t("payment"))),
    num(money(d.amount, d.currency)), h("td", {}, d.reason || ""), h("td", {}, disputeBadge(d.status)),
    h("td", { class: DISPUTE_OPEN.includes(d.status) && d.evidence_due_by && Date.parse(d.evidence_due_by) < soon ? "error" : "" }, d.evidence_due_by ? when(d.evidence_due_by) : "—"),
    num(String(d.evidence_submissions)),
    num(d.transfer_reversed ? money(d.transfer_reversed, d.currency) : "—"),
    h("td", {}, DISPUTE_OPEN.includes(d.status) ? h("button", { type: "button", class: "secondary", onclick: () => answer.replaceChildren(evidenceForm(d)) }, t("answer")) : "")));
  const headers = [[t("date")], isPlatform() ? [t("organization")] : null, [t("payment")], [t("amount"), "num"], [t("reason")], [t("status")],
    [t("due_by")], [t("submitted"), "num"], [t("reversed"), "num"], [""]].filter(Boolean);
  mount(main, h("h1", {}, t("disputes")), chooser, table(headers, rows, { id: "disputes" }), answer);
}
function evidenceForm(d) {
  const inputs = Object.fromEntries(["product_description", "customer_communication", "uncategorized_text"].map((name) => [name, h("textarea", { rows: 3, cols: 60 })]));
  const submitNow = h("input", { type: "checkbox", checked: true });
  const form = h("form", { class: "card", id: "evidence-form", onsubmit: async (event) => {
    event.preventDefault();
    const evidence = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value.trim()]).filter(([, v]) => v));
    try {
      await api("POST", `/v1/disputes/${d.id}/evidence`, { evidence, submit: submitNow.checked });
      toast(t(submitNow.checked ? "evidence_sent" : "evidence_staged")); render();
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, `${t("evidence")} — ${money(d.amount, d.currency)}${d.evidence_due_by ? ` (${t("due_by")} ${when(d.evidence_due_by)})` : ""}`),
    Object.entries(inputs).map(([name, input]) => field(t(name), input, `evidence.${name}`)),
    h("label", {}, h("span", {}, t("submit_now")), submitNow),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "send-evidence" }, t("send_evidence"))));
  return form;
}


// ---------- payouts of an organisation ----------
// Its Stripe payouts (a failed one stands out, with Stripe's reason), the schedule Stripe pays out on,
// and a payout on demand when that schedule is manual. Org admins: their own; platform admins: any.
Object.assign(WORDS, {
  books: ["Comptabilité", "Books"], schedule: ["Calendrier des virements", "Payout schedule"], interval: ["Fréquence", "Interval"],
  weekly_anchor: ["Jour de la semaine", "Day of the week"], daily: ["quotidien", "daily"], weekly: ["hebdomadaire", "weekly"],
  manual: ["manuel (à la demande)", "manual (on demand)"], monday: ["lundi", "Monday"], tuesday: ["mardi", "Tuesday"],
  wednesday: ["mercredi", "Wednesday"], thursday: ["jeudi", "Thursday"], friday: ["vendredi", "Friday"], saturday: ["samedi", "Saturday"],
  sunday: ["dimanche", "Sunday"], schedule_now: ["Calendrier actuel", "Current schedule"],
  schedule_unread: ["non affiché (l'API ne le donne qu'après un changement)", "not shown (the API answers it only when changed)"],
  pay_out_now: ["Virer maintenant", "Pay out now"], payout_amount: ["Montant (vide : tout le solde disponible)", "Amount (empty: the whole available balance)"],
  payout_made: ["Virement demandé.", "Payout requested."], manual_only: ["Le virement à la demande demande un calendrier manuel.", "Payouts on demand need a manual schedule."],
  failed_payouts: ["Virements en échec", "Failed payouts"], failure: ["Motif de l'échec", "Failure reason"], created: ["Créé", "Created"],
});
ROUTES.push([/^\/console\/organizations\/([^/]+)\/payouts$/, payoutsPage, "admin"], [/^\/console\/organizations\/([^/]+)\/books$/, booksPage, "admin"]);
state.schedules = {};  // organisation id -> its payout schedule as the API last answered it
let openapiDocument = null;
async function apiEnum(path, method, name) {  // a closed set as the API declares it (/openapi.json), never a copy
  openapiDocument = openapiDocument || api("GET", "/openapi.json").catch((error) => { openapiDocument = null; throw error; });
  // Matched by shape: a path parameter's name ({org_id}, {organization_id}) is the document's business.
  const shape = (template) => template.replace(/\{[^}]*\}/g, "{}");
  const paths = (await openapiDocument).paths || {};
  const found = Object.keys(paths).find((template) => shape(template) === shape(path));
  const operation = (found ? paths[found] : {})[method] || {};
  const schema = (((operation.requestBody || {}).content || {})["application/json"] || {}).schema || {};
  return (((schema.properties || {})[name] || {}).enum || []).filter((value) => value !== null);  // null: "left out"
}
const day = (stamp) => (stamp ? new Intl.DateTimeFormat(locale(), { dateStyle: "short" }).format(new Date(stamp)) : "—");
const failureText = (p) => [p.failure_message, p.failure_code && `(${p.failure_code})`].filter(Boolean).join(" ");
function payoutStatus(p, withReason = true) {
  return [h("span", { class: p.status === "failed" ? "badge bad" : "badge" }, p.status), withReason && p.status === "failed" ? h("span", { class: "error" }, " " + failureText(p)) : null];
}
async function organizationPayouts(orgId) {  // the API lists oldest first: every page, then newest first
  const all = [];
  let cursor = "";
  for (let pages = 0; pages < 20; pages++) {
    const page = await api("GET", `/v1/organizations/${orgId}/payouts${qs({ limit: "100", cursor })}`);
    all.push(...page.data); cursor = page.next_cursor;
    if (!cursor) break;
  }
  return all.reverse();
}
async function failedPayouts(orgs) {  // the overview's "needs attention" lines
  const payouts = isPlatform() ? await listAll("/v1/banking/payouts").catch(() => [])
    : (await Promise.all(orgs.map((o) => organizationPayouts(o.id).catch(() => [])))).flat();
  const names = Object.fromEntries(orgs.map((o) => [o.id, o.name]));
  return payouts.filter((p) => p.status === "failed").map((p) => h("li", { class: "error" }, `${t("failed_payouts")} : `,
    h("a", { href: `/console/organizations/${p.organization_id}/payouts`, "data-nav": true }, `${names[p.organization_id] || p.organization_id} ${money(p.amount, p.currency)}`),
    ` — ${failureText(p)}`));
}
async function payoutsPage(main, orgId) {
  const [org, payouts] = await Promise.all([api("GET", `/v1/organizations/${orgId}`), organizationPayouts(orgId)]);
  const failed = payouts.filter((p) => p.status === "failed");
  const rows = payouts.map((p) => h("tr", { "data-payout": p.id, class: p.status === "failed" ? "failed" : null },
    h("td", {}, when(p.created_at)), num(money(p.amount, p.currency)), h("td", {}, payoutStatus(p, false)), h("td", {}, day(p.arrival_date)),
    h("td", { class: "error" }, p.status === "failed" ? failureText(p) : ""), h("td", { class: "muted" }, p.stripe_payout_id)));
  const alert = failed.length ? h("div", { class: "card alert", role: "alert", id: "failed-payouts" }, h("h2", {}, `⚠ ${t("failed_payouts")} (${failed.length})`),
    h("ul", {}, failed.map((p) => h("li", {}, `${day(p.created_at)} · ${money(p.amount, p.currency)} — ${failureText(p)}`)))) : null;
  mount(main, h("h1", {}, `${t("payouts")} — ${org.name}`), orgTabs(orgId), alert,
    table([[t("created")], [t("amount"), "num"], [t("status")], [t("arrival")], [t("failure")], ["Stripe"]], rows, { id: "org-payouts" }),
    await scheduleForm(orgId), manualPayoutForm(orgId, org));
}
async function scheduleForm(orgId) {
  const path = "/v1/organizations/{org_id}/payout-schedule";
  const [intervals, weekdays] = await Promise.all([apiEnum(path, "patch", "interval"), apiEnum(path, "patch", "weekly_anchor")]);
  // As Stripe has it now (a failed read leaves it unknown: the form still offers every choice).
  state.schedules[orgId] = await api("GET", `/v1/organizations/${orgId}/payout-schedule`).catch(() => state.schedules[orgId]);
  const known = state.schedules[orgId];
  const interval = h("select", {}, intervals.map((v) => h("option", { value: v, selected: known && known.interval === v }, t(v))));
  const anchor = h("select", {}, weekdays.map((v) => h("option", { value: v, selected: known && known.weekly_anchor === v }, t(v))));
  const anchorField = field(t("weekly_anchor"), anchor, "weekly_anchor");
  const showAnchor = () => { anchorField.hidden = interval.value !== "weekly"; };
  interval.addEventListener("change", showAnchor); showAnchor();
  const form = h("form", { class: "card inline", id: "payout-schedule", onsubmit: async (event) => {
    event.preventDefault();
    try {
      state.schedules[orgId] = await api("PATCH", `/v1/organizations/${orgId}/payout-schedule`,
        { interval: interval.value, weekly_anchor: interval.value === "weekly" ? anchor.value : undefined });
      toast(t("saved")); render();
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, t("schedule")),
    h("p", { class: "muted", id: "schedule-now" }, `${t("schedule_now")} : `, known ? [t(known.interval), known.weekly_anchor ? ` (${t(known.weekly_anchor)})` : ""] : t("schedule_unread")),
    field(t("interval"), interval, "interval"), anchorField, h("button", { type: "submit", id: "save-schedule" }, t("save")));
  return form;
}
function manualPayoutForm(orgId, org) {
  const known = state.schedules[orgId];
  // Unknown (its read failed): offered, and the API's 409 says when it is not manual.
  if (known && known.interval !== "manual") return h("p", { class: "card muted", id: "manual-payout" }, t("manual_only"));
  const currency = org.default_currency || "eur";
  const amount = h("input", { inputmode: "decimal", placeholder: "—" });
  let key = crypto.randomUUID(), busy = false;  // one key per payout asked: a double click or a retry pays once
  amount.addEventListener("input", () => { key = crypto.randomUUID(); });
  const button = h("button", { type: "submit", id: "pay-out-now" }, t("pay_out_now"));
  const form = h("form", { class: "card inline", id: "manual-payout", onsubmit: async (event) => {
    event.preventDefault();
    if (busy) return;
    const cents = amount.value.trim() ? parseEuros(amount.value) : undefined;
    if (Number.isNaN(cents) || cents === 0) { showErrors(form, new Problem(400, { errors: [{ field: "amount", message: `> ${money(0, currency)}` }] })); return; }
    busy = true; button.disabled = true;
    try {
      await api("POST", `/v1/organizations/${orgId}/payouts`, { amount: cents }, { idempotencyKey: key });
      key = crypto.randomUUID(); toast(t("payout_made")); render();
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
    finally { busy = false; button.disabled = false; }
  } }, h("h2", {}, t("pay_out_now")), field(t("payout_amount"), amount, "amount"), button);
  return form;
}

// ---------- books of an organisation: its FEC and Pennylane ----------
Object.assign(WORDS, {
  fec_title: ["Fichier des écritures comptables (FEC)", "Accounting entries file (FEC)"], pennylane: ["Pennylane", "Pennylane"],
  configured: ["configuré", "configured"], not_configured: ["non configuré", "not configured"], enabled: ["Actif", "Enabled"],
  start_date: ["À partir du", "Starting on"], sales_as: ["Ventes envoyées comme", "Sales sent as"], default: ["par défaut", "default"],
  ledger_entries: ["écritures comptables", "ledger entries"], customer_invoices: ["factures client", "customer invoices"],
  api_token: ["Jeton d'API Pennylane", "Pennylane API token"], token_kept: ["déjà enregistré : laisser vide pour le garder", "already saved: leave empty to keep it"],
  journal_ids: ["Journaux (code FEC → id Pennylane)", "Journals (FEC code → Pennylane id)"],
  ledger_account_ids: ["Comptes (numéro FEC → id Pennylane)", "Accounts (FEC number → Pennylane id)"],
  code: ["Code", "Code"], pennylane_id: ["Id Pennylane", "Pennylane id"], add_line: ["Ajouter une ligne", "Add a line"],
  not_pushed: ["Écritures non envoyées", "Entries not pushed"], document: ["Document", "Document"], journal: ["Journal", "Journal"],
  push_now: ["Envoyer à Pennylane maintenant", "Push to Pennylane now"], push_running: ["Un envoi est déjà en cours.", "A push is already running."],
  pushed: ["Envoyées", "Pushed"], found: ["Retrouvées", "Found"], unchanged: ["Inchangées", "Unchanged"], invoiced: ["Facturées", "Invoiced"],
  platform_books: ["Comptabilité de la plateforme", "The platform's books"], until: ["Jusqu'au", "Until"],
});
async function booksPage(main, orgId) {
  const org = await api("GET", `/v1/organizations/${orgId}`);
  mount(main, h("h1", {}, `${t("books")} — ${org.name}`), orgTabs(orgId), fecSection(orgId, org),
    await pennylaneSection(`/v1/organizations/${orgId}/pennylane`, false));
}
async function download(path) {  // a file from the API, its problem+json thrown like api()'s
  const answer = await fetch(path, { credentials: "same-origin" });
  if (!answer.ok) {
    const text = await answer.text();
    throw new Problem(answer.status, (answer.headers.get("content-type") || "").includes("json") && text ? JSON.parse(text) : {});
  }
  const name = ((answer.headers.get("content-disposition") || "").match(/filename="([^"]+)"/) || [])[1] || "export.txt";
  const link = h("a", { href: URL.createObjectURL(await answer.blob()), download: name });
  document.body.append(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
function fecSection(orgId, org) {
  const zone = org.timezone || "Europe/Paris";
  const from = h("input", { type: "date", value: dayIn(zone).slice(0, 8) + "01" }), to = h("input", { type: "date", value: dayIn(zone) });
  const form = h("form", { class: "card inline", id: "org-fec", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await download(`/v1/organizations/${orgId}/exports/fec${qs({ from: from.value, to: to.value })}`);
      form.querySelectorAll(".field-error, .form-error").forEach((e) => { e.textContent = ""; });
    }
    catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, t("fec_title")), field(t("from"), from, "from"), field(t("to"), to, "to"), h("button", { type: "submit", id: "download-org-fec" }, t("download_fec")));
  return form;
}
function idRows(name, ids) {  // `{code: id}` as editable lines; each id input named after the API's field
  const body = h("div", { class: "id-rows", "data-map": name });
  const row = (code = "", id = "") => {
    const line = h("div", { class: "actions id-row" });
    line.append(field(t("code"), h("input", { value: code, size: 8, class: "map-code" })), field(t("pennylane_id"), h("input", { type: "number", min: 1, value: id, class: "map-id" })),
      h("button", { type: "button", class: "secondary", onclick: () => line.remove() }, t("remove")));
    return line;
  };
  Object.entries(ids || {}).forEach(([code, id]) => body.append(row(code, String(id))));
  const read = () => Object.fromEntries([...body.querySelectorAll(".id-row")].map((line) => {
    const code = line.querySelector(".map-code"), id = line.querySelector(".map-id");
    id.dataset.field = `${name}.${code.value.trim()}`;
    return [code.value.trim(), id.value.trim() === "" ? null : Number(id.value)];
  }).filter(([code]) => code));
  const box = h("fieldset", { class: "id-map" }, h("legend", {}, t(name)), body,
    h("button", { type: "button", class: "secondary", "data-add": name, onclick: () => body.append(row()) }, t("add_line")));
  return { box, read };
}
async function pennylaneSection(path, platform, names = {}) {
  const [settings, salesAs] = await Promise.all([api("GET", path), apiEnum(platform ? "/v1/banking/pennylane" : "/v1/organizations/{organization_id}/pennylane", "put", "sales_as")]);
  const token = h("input", { type: "password", autocomplete: "new-password", placeholder: settings.api_token_set ? t("token_kept") : "" });
  const start = h("input", { type: "date", value: settings.start_date || "" });
  const enabled = h("input", { type: "checkbox", checked: settings.enabled || !settings.api_token_set });
  const sales = h("select", {}, h("option", { value: "" }, `— (${t("default")})`), salesAs.map((v) => h("option", { value: v, selected: v === settings.sales_as }, t(v))));
  const journals = idRows("journal_ids", settings.journal_ids), accounts = idRows("ledger_account_ids", settings.ledger_account_ids);
  const form = h("form", { class: "card", id: platform ? "platform-pennylane" : "pennylane", onsubmit: async (event) => {
    event.preventDefault();
    const body = { start_date: start.value, enabled: enabled.checked, journal_ids: journals.read(), ledger_account_ids: accounts.read(),
      sales_as: sales.value || undefined, api_token: token.value || undefined };
    try { await api("PUT", path, body); token.value = ""; toast(t("saved")); render(); }
    catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, h("h2", {}, platform ? `${t("pennylane")} — ${t("platform_books")}` : t("pennylane")),
    h("dl", { class: "facts", id: platform ? "platform-pennylane-status" : "pennylane-status" },
      h("dt", {}, t("status")), h("dd", {}, badge(settings.api_token_set, t("configured"), t("not_configured"))),
      h("dt", {}, t("enabled")), h("dd", {}, settings.enabled ? "✓" : "✗"),
      h("dt", {}, t("sales_as")), h("dd", {}, settings.sales_as ? t(settings.sales_as) : "—")),
    h("div", { class: "inline" }, field(t("api_token"), token, "api_token"), field(t("start_date"), start, "start_date"), field(t("sales_as"), sales, "sales_as"),
      h("label", {}, h("span", {}, t("enabled")), enabled)),
    journals.box, accounts.box, h("div", { class: "actions" }, h("button", { type: "submit", class: "save-pennylane" }, t("save"))));
  const failures = table([[t("reference")], [t("document")], [t("journal")], [t("date")], [t("status")], [t("attempts"), "num"], [t("error")]],
    settings.failures.map((f) => h("tr", { class: "failed" }, h("td", {}, f.reference || "—"), h("td", {}, f.document ? t(f.document) : "—"), h("td", {}, f.journal || "—"),
      h("td", {}, f.date || "—"), h("td", {}, h("span", { class: "badge bad" }, f.status)), num(String(f.attempts)), h("td", { class: "wrap" }, f.error))),
    { id: platform ? "platform-pennylane-failures" : "pennylane-failures" });
  return h("section", { id: platform ? "platform-pennylane-section" : "pennylane-section" }, form,
    h("h3", {}, `${t("not_pushed")} (${settings.failures.length})`), failures, platform ? pushForm(names) : null);
}
function pushForm(names) {  // the platform admin runs the scheduled push now (every configured entity)
  const until = h("input", { type: "date", value: dayIn("Europe/Paris") });
  const out = h("div", { id: "push-results" });
  const form = h("form", { class: "card inline", id: "pennylane-push", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", "/v1/banking/pennylane/push", { to_date: until.value });
      if (!answer.ran) { toast(t("push_running")); return; }
      const reasons = (r) => [...new Set(r.failures.map((f) => f.error))].join(" · ");
      out.replaceChildren(table([[t("entity")], [t("pushed"), "num"], [t("found"), "num"], [t("unchanged"), "num"], [t("invoiced"), "num"], [t("not_pushed"), "num"], [t("error")]],
        answer.results.map((r) => h("tr", { class: r.failures.length ? "failed" : null }, h("td", {}, r.entity === "platform" ? t("platform_books") : names[r.entity] || r.entity),
          num(String(r.pushed)), num(String(r.found)), num(String(r.unchanged)), num(String(r.invoiced)), num(String(r.failures.length)),
          h("td", { class: "wrap" }, reasons(r)))), { id: "push-table" }));
    } catch (error) { if (error instanceof Problem) showErrors(form, error); else throw error; }
  } }, field(t("until"), until, "to_date"), h("button", { type: "submit", id: "push-now" }, t("push_now")), out);
  return form;
}

render();
