// auditlog web UI (SPEC §7): the audit log grid, its column filters, the activity histogram,
// live updates, export links and the View Difference pop-up.
//
// Plain JavaScript, no framework and no build step; the server compiles this file into its
// binary. It talks only to the public /api/v1 routes, authenticated by the session cookie.
//
// Security rule of this file: audit data is hostile input (anyone with an ingest token wrote
// it). The DOM is built with createElement and textContent only; no markup is ever parsed
// from strings. The page's Content-Security-Policy forbids inline script and style as a
// second line of defence.
'use strict';

(() => {
  // ------------------------------------------------------------------------------------------
  // DOM helpers
  // ------------------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  /** An element with properties (className, title, …), `data` attributes and children. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === 'data') {
          for (const [name, v] of Object.entries(value)) node.dataset[name] = v;
        } else if (key === 'attrs') {
          for (const [name, v] of Object.entries(value)) node.setAttribute(name, v);
        } else if (key === 'on') {
          for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
        } else {
          node[key] = value;
        }
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  const isTyping = (target) =>
    target instanceof HTMLElement &&
    (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable);

  // ------------------------------------------------------------------------------------------
  // API
  // ------------------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body, response) {
      const error = (body && body.error) || {};
      super(error.message || `request failed with status ${status}`);
      this.status = status;
      this.code = error.code || '';
      this.caret = typeof error.caret === 'string' ? error.caret : '';
      this.retryAfter = response ? response.headers.get('Retry-After') : null;
    }
  }

  /** JSON request to the API; non-2xx answers throw an ApiFailure. */
  async function api(path, options = {}) {
    const method = options.method || 'GET';
    const headers = { Accept: 'application/json' };
    if (options.json !== undefined) headers['Content-Type'] = 'application/json';
    // A request authenticated by the cookie that changes anything must prove it comes from
    // this page (the cookie is SameSite=Strict as well).
    if (method !== 'GET' && session && session.csrf_token) headers['X-CSRF-Token'] = session.csrf_token;
    const response = await fetch(path, {
      method,
      headers,
      body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: options.signal,
    });
    const text = await response.text();
    let body = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = options.text ? text : null;
      }
    }
    if (!response.ok) {
      const failure = new ApiFailure(response.status, body, response);
      if (response.status === 401 && !options.quiet401) sessionExpired();
      throw failure;
    }
    return options.text ? text : body;
  }

  const qs = (params) => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') search.set(key, value);
    }
    const text = search.toString();
    return text ? `?${text}` : '';
  };

  // ------------------------------------------------------------------------------------------
  // Query text (SPEC §4). The search box holds the whole query; the column filters are its
  // `field:v1,v2` clauses, so chips, menus and the address all show the same text.
  // ------------------------------------------------------------------------------------------

  /** Splits a query into clause texts at whitespace outside phrases, keeping escapes. */
  function splitClauses(q) {
    const clauses = [];
    let current = '';
    let quoted = false;
    for (let i = 0; i < q.length; i++) {
      const c = q[i];
      if (c === '\\' && i + 1 < q.length) {
        current += c + q[i + 1];
        i++;
      } else if (c === '"') {
        quoted = !quoted;
        current += c;
      } else if (!quoted && /\s/u.test(c)) {
        if (current) clauses.push(current);
        current = '';
      } else {
        current += c;
      }
    }
    if (current) clauses.push(current);
    return clauses;
  }

  /** Splits the values of a field clause at commas outside phrases, keeping escapes. */
  function splitValues(text) {
    const values = [];
    let current = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\\' && i + 1 < text.length) {
        current += c + text[i + 1];
        i++;
      } else if (c === '"') {
        quoted = !quoted;
        current += c;
      } else if (c === ',' && !quoted) {
        values.push(current);
        current = '';
      } else {
        current += c;
      }
    }
    values.push(current);
    return values;
  }

  const FIELD_RE = /^([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*):(?!:)([\s\S]*)$/;
  const ALIASES = { pk: 'primary_key' };

  /** One clause: {raw, negated, field (canonical name) or null, values (raw texts)}. */
  function parseClause(raw) {
    const negated = raw.length > 1 && raw[0] === '-';
    const body = negated ? raw.slice(1) : raw;
    const match = FIELD_RE.exec(body);
    if (!match) return { raw, negated, field: null, values: [] };
    const field = ALIASES[match[1]] || match[1];
    return { raw, negated, field, values: splitValues(match[2]) };
  }

  /** The text a raw value stands for: a phrase unquoted, a word unescaped. */
  function valueText(raw) {
    if (raw.length >= 2 && raw[0] === '"' && raw[raw.length - 1] === '"') {
      return raw.slice(1, -1).replace(/\\(["\\])/g, '$1');
    }
    return raw.replace(/\\(.)/g, '$1');
  }

  /** A value as query text: a plain word when it is one, else a phrase. */
  function formatValue(text) {
    if (/^[\p{L}\p{N}_@.+:/#=~'$%&!?()[\]{}|^-]+$/u.test(text) && !text.includes('..') && !/^[<>]/.test(text)) {
      return text;
    }
    return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }

  /** A typed filter value: `ali*` stays a prefix, anything else is taken literally. */
  function formatTyped(text) {
    const trimmed = text.trim();
    if (trimmed.endsWith('*') && trimmed.length > 1) {
      const stem = trimmed.slice(0, -1);
      if (formatValue(stem) === stem) return trimmed;
    }
    return formatValue(trimmed);
  }

  /** The query with every positive clause on `field` replaced by `field:values` (or none). */
  function withField(q, field, values) {
    const kept = [];
    let at = -1;
    for (const raw of splitClauses(q)) {
      const clause = parseClause(raw);
      if (clause.field === field && !clause.negated) {
        if (at < 0) at = kept.length;
        continue;
      }
      kept.push(raw);
    }
    if (values.length) {
      const clause = `${field}:${values.join(',')}`;
      if (at < 0) kept.push(clause);
      else kept.splice(at, 0, clause);
    }
    return kept.join(' ');
  }

  /** The texts of the positive values the query filters `field` by. */
  function fieldValues(q, field) {
    const out = [];
    for (const raw of splitClauses(q)) {
      const clause = parseClause(raw);
      if (clause.field === field && !clause.negated) out.push(...clause.values);
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // State and the page address
  // ------------------------------------------------------------------------------------------

  const COLUMNS = [
    { key: 'user', label: 'User', sort: 'user', facet: 'user', cls: 'col-user' },
    { key: 'ip', label: 'IP', sort: 'ip', facet: 'ip', cls: 'col-ip' },
    { key: 'time', label: 'Date/Time', sort: 'time', cls: 'col-time' },
    { key: 'primary_key', label: 'Primary Key', sort: 'primary_key', facet: 'primary_key', cls: 'col-pk' },
    { key: 'action', label: 'Action', sort: 'action', facet: 'action', cls: 'col-action' },
    { key: 'table', label: 'Table', sort: 'table', facet: 'table', cls: 'col-table' },
    { key: 'message', label: 'Message', sort: 'message', facet: 'message', cls: 'col-message' },
    { key: 'data', label: 'Data', cls: 'col-data' },
  ];
  const FIELD_LABELS = {
    user: 'User', ip: 'IP', time: 'Time', primary_key: 'Primary Key', action: 'Action',
    table: 'Table', message: 'Message', source: 'Source', seq: 'Seq', received_at: 'Received',
  };
  const SORTS = ['time', 'received_at', 'seq', 'user', 'ip', 'primary_key', 'action', 'table', 'message', 'source'];
  const PAGE_SIZE = 100;

  /** What the address holds: a copied link reproduces the view. */
  const view = { q: '', sort: 'time', order: 'desc', live: false, tz: 'utc' };

  let session = null; // the answer of GET or POST /api/v1/session
  const grid = {
    rows: [], // events in display order
    seqs: new Set(),
    cursor: null,
    loading: false,
    total: 0,
    generation: 0, // bumps on every new query; stale answers are dropped
    abort: null,
    selected: -1,
    newCount: 0,
  };

  function readAddress() {
    const params = new URLSearchParams(location.search);
    view.q = params.get('q') || '';
    const sort = params.get('sort');
    view.sort = SORTS.includes(sort) ? sort : 'time';
    const order = params.get('order');
    view.order = order === 'asc' || order === 'desc' ? order : view.sort === 'time' ? 'desc' : 'asc';
    view.live = params.get('live') === '1';
    view.tz = params.get('tz') === 'local' ? 'local' : 'utc';
  }

  function writeAddress(push) {
    const address =
      location.pathname +
      qs({
        q: view.q,
        sort: view.sort === 'time' ? '' : view.sort,
        order: view.order === (view.sort === 'time' ? 'desc' : 'asc') ? '' : view.order,
        live: view.live ? '1' : '',
        tz: view.tz === 'local' ? 'local' : '',
      });
    if (address === location.pathname + location.search) return;
    if (push) history.pushState(null, '', address);
    else history.replaceState(null, '', address);
  }

  /** Applies a new query/sort: address, search box, chips, grid, histogram, live stream. */
  function run(changes, { push = true } = {}) {
    Object.assign(view, changes);
    writeAddress(push);
    renderControls();
    loadGrid();
    loadHistogram();
    restartLive();
  }

  // ------------------------------------------------------------------------------------------
  // Sign-in and sign-out
  // ------------------------------------------------------------------------------------------

  function showSignin(message) {
    stopLive();
    $('app').hidden = true;
    closeDiff();
    closeMenu();
    $('signin').hidden = false;
    const error = $('signin-error');
    error.textContent = message || '';
    error.hidden = !message;
    const user = $('signin-user');
    (user.value ? $('signin-password') : user).focus();
    document.title = 'Sign in · auditlog';
  }

  function sessionExpired() {
    if (!$('app').hidden) {
      session = null;
      showSignin('Your session has ended. Please sign in again.');
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const button = $('signin-submit');
    button.disabled = true;
    $('signin-error').hidden = true;
    try {
      session = await api('/api/v1/session', {
        method: 'POST',
        quiet401: true,
        json: {
          tenant: $('signin-tenant').value.trim(),
          user: $('signin-user').value.trim(),
          password: $('signin-password').value,
        },
      });
      $('signin-password').value = '';
      showApp();
    } catch (failure) {
      let message = 'Sign-in failed: ' + failure.message;
      if (failure.status === 401) message = 'Wrong tenant, user name or password.';
      if (failure.status === 429) {
        message = 'Too many attempts.' + (failure.retryAfter ? ` Try again in ${failure.retryAfter} s.` : ' Try again later.');
      }
      $('signin-error').textContent = message;
      $('signin-error').hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    try {
      await api('/api/v1/session', { method: 'DELETE', quiet401: true });
    } catch {
      // Signed out already, or the server is gone: the page forgets the session either way.
    }
    session = null;
    grid.rows = [];
    $('grid-body').replaceChildren();
    showSignin('You are signed out.');
  }

  function showApp() {
    $('signin').hidden = true;
    $('app').hidden = false;
    document.title = 'Audit log';
    const who = [session.user, session.tenant, session.role].filter(Boolean).join(' · ');
    $('whoami').textContent = who;
    $('signout').hidden = !session.user;
    // A viewer may not export (403); do not offer it.
    $('export').hidden = session.role === 'viewer';
    renderHead();
    run({}, { push: false });
  }

  // ------------------------------------------------------------------------------------------
  // Time
  // ------------------------------------------------------------------------------------------

  const pad = (n, width = 2) => String(n).padStart(width, '0');

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    if (view.tz === 'local') {
      return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
    }
    return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  }

  function zoneName() {
    if (view.tz === 'utc') return 'UTC';
    const minutes = -new Date().getTimezoneOffset();
    const sign = minutes < 0 ? '−' : '+';
    const abs = Math.abs(minutes);
    return `local, UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }

  // ------------------------------------------------------------------------------------------
  // Controls: search box, chips, header, export links
  // ------------------------------------------------------------------------------------------

  function renderControls() {
    const search = $('search');
    if (document.activeElement !== search || search.value !== view.q) search.value = view.q;
    $('live').checked = view.live;
    $('live').closest('label').classList.toggle('on', view.live);
    $('tz-utc').setAttribute('aria-pressed', String(view.tz === 'utc'));
    $('tz-local').setAttribute('aria-pressed', String(view.tz === 'local'));
    const exportParams = { q: view.q, sort: view.sort, order: view.order };
    $('export-csv').href = '/api/v1/export' + qs({ ...exportParams, format: 'csv' });
    $('export-ndjson').href = '/api/v1/export' + qs({ ...exportParams, format: 'ndjson' });
    renderChips();
    renderHeadState();
  }

  function renderChips() {
    const box = $('chips');
    box.replaceChildren();
    for (const raw of splitClauses(view.q)) {
      const clause = parseClause(raw);
      if (!clause.field) continue;
      const label = FIELD_LABELS[clause.field] || clause.field;
      clause.values.forEach((value, index) => {
        const text = valueText(value);
        const chip = el(
          'span',
          { className: 'chip' + (clause.negated ? ' negated' : ''), title: `${clause.negated ? '-' : ''}${clause.field}:${value}` },
          el('span', { className: 'chip-field' }, `${label} ${clause.negated ? '≠' : '='}`),
          el('span', { className: 'chip-value' }, text),
          el('button', {
            type: 'button',
            title: 'Remove this filter',
            attrs: { 'aria-label': `Remove filter ${label} ${text}` },
            on: { click: () => removeChip(raw, index) },
          }, '×'),
        );
        box.append(chip);
      });
    }
  }

  /** Removes one value of one clause (the whole clause when it was the last). */
  function removeChip(raw, index) {
    const clauses = splitClauses(view.q);
    const at = clauses.indexOf(raw);
    if (at < 0) return;
    const clause = parseClause(raw);
    const values = clause.values.filter((_, i) => i !== index);
    if (values.length) {
      const prefix = raw.slice(0, raw.indexOf(':') + 1);
      clauses[at] = prefix + values.join(',');
    } else {
      clauses.splice(at, 1);
    }
    run({ q: clauses.join(' ') });
  }

  function renderHead() {
    const head = $('grid-head');
    head.replaceChildren();
    for (const column of COLUMNS) {
      const th = el('th', { className: column.cls, data: { key: column.key }, attrs: { scope: 'col' } });
      const inner = el('div', { className: 'th' });
      if (column.sort) {
        inner.append(
          el('button', {
            type: 'button',
            className: 'th-sort',
            title: `Sort by ${column.label}`,
            on: { click: () => toggleSort(column) },
          }, el('span', { className: 'th-label' }, column.label), el('span', { className: 'sort-ind', attrs: { 'aria-hidden': 'true' } })),
          el('button', {
            type: 'button',
            className: 'th-menu',
            title: `${column.label}: sort and filter`,
            attrs: { 'aria-label': `${column.label} column menu`, 'aria-haspopup': 'dialog', 'aria-expanded': 'false' },
            on: { click: (event) => openMenu(column, event.currentTarget) },
          }, '☰'),
        );
      } else {
        inner.append(el('span', { className: 'th-sort' }, column.label));
      }
      th.append(inner);
      head.append(th);
    }
  }

  function renderHeadState() {
    for (const th of $('grid-head').children) {
      const column = COLUMNS.find((c) => c.key === th.dataset.key);
      const sorted = column.sort && column.sort === view.sort;
      th.setAttribute('aria-sort', sorted ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none');
      const indicator = th.querySelector('.sort-ind');
      if (indicator) indicator.textContent = sorted ? (view.order === 'asc' ? '▲' : '▼') : '';
      const label = th.querySelector('.th-label');
      if (label && column.key === 'time') label.textContent = `Date/Time (${zoneName()})`;
      const filtered = column.sort && fieldValues(view.q, column.key === 'time' ? 'time' : column.key).length > 0;
      th.classList.toggle('filtered', Boolean(filtered));
    }
  }

  function toggleSort(column) {
    if (view.sort === column.sort) run({ order: view.order === 'asc' ? 'desc' : 'asc' });
    else run({ sort: column.sort, order: column.sort === 'time' ? 'desc' : 'asc' });
  }

  // ------------------------------------------------------------------------------------------
  // Grid: keyset pages, infinite scroll, selection
  // ------------------------------------------------------------------------------------------

  function setBusy(busy) {
    $('app').dataset.busy = busy ? '1' : '0';
    $('grid-loading').hidden = !busy;
  }

  function showError(failure) {
    if (!failure) {
      $('error').hidden = true;
      return;
    }
    $('error-title').textContent =
      failure.code === 'invalid_query' ? failure.message : `Could not load events: ${failure.message}`;
    $('error-caret').textContent = failure.caret || '';
    $('error').hidden = false;
  }

  async function loadGrid() {
    if (grid.abort) grid.abort.abort();
    grid.abort = new AbortController();
    const generation = ++grid.generation;
    grid.rows = [];
    grid.seqs.clear();
    grid.cursor = null;
    grid.selected = -1;
    grid.newCount = 0;
    $('new-events').hidden = true;
    $('grid-body').replaceChildren();
    $('grid-empty').hidden = true;
    $('grid-end').hidden = true;
    $('load-more').hidden = true;
    $('total').textContent = '';
    $('took').textContent = '';
    showError(null);
    // User Timing marks (read by benches/ui.rs): from the query to its first rows on screen.
    performance.mark('auditlog:query');
    await loadPage(generation);
  }

  async function loadMore() {
    if (grid.loading || !grid.cursor) return;
    await loadPage(grid.generation);
  }

  async function loadPage(generation) {
    grid.loading = true;
    setBusy(true);
    try {
      const page = await api(
        '/api/v1/events' + qs({ q: view.q, sort: view.sort, order: view.order, limit: PAGE_SIZE, cursor: grid.cursor }),
        { signal: grid.abort.signal },
      );
      if (generation !== grid.generation) return;
      grid.cursor = page.next_cursor || null;
      grid.total = page.total;
      const fragment = document.createDocumentFragment();
      for (const event of page.events) {
        if (grid.seqs.has(event.seq)) continue;
        grid.seqs.add(event.seq);
        grid.rows.push(event);
        fragment.append(rowFor(event));
      }
      const first = !$('grid-body').firstChild;
      $('grid-body').append(fragment);
      if (first) {
        performance.mark('auditlog:rows');
        performance.measure('auditlog:query-to-rows', 'auditlog:query', 'auditlog:rows');
      }
      renderTotal(page.took_ms, page.total_is_exact);
      $('grid-empty').hidden = grid.rows.length > 0;
      $('load-more').hidden = !grid.cursor;
      $('grid-end').hidden = Boolean(grid.cursor) || grid.rows.length === 0;
    } catch (failure) {
      if (failure.name === 'AbortError' || generation !== grid.generation) return;
      showError(failure);
    } finally {
      if (generation === grid.generation) {
        grid.loading = false;
        setBusy(false);
        // A short page may leave the end of the list in view: observing it afresh reports
        // whether it still is, and loads the next page if so.
        recheckSentinel();
      }
    }
  }

  function renderTotal(tookMs, exact) {
    const n = grid.total.toLocaleString('en-US');
    $('total').textContent = `${exact === false ? '≈ ' : ''}${n} ${grid.total === 1 ? 'event' : 'events'}`;
    if (tookMs !== undefined) $('took').textContent = `${grid.rows.length.toLocaleString('en-US')} shown · ${tookMs} ms`;
    else $('took').textContent = `${grid.rows.length.toLocaleString('en-US')} shown`;
  }

  const ACTION_CLASSES = { CREATE: 'a-create', DELETE: 'a-delete', UPDATE: 'a-update', PUT: 'a-put', LOGIN: 'a-login' };

  function cell(label, className, ...children) {
    return el('td', { className, data: { label } }, ...children);
  }

  function rowFor(event) {
    const tr = el('tr', { tabIndex: -1, data: { seq: String(event.seq) } });
    const pk = event.primary_key === undefined || event.primary_key === null ? '' : String(event.primary_key);
    tr.append(
      cell('User', 'user', String(event.user ?? '')),
      cell('IP', 'ip', String(event.ip ?? '')),
      cell('Date/Time', 'time', el('time', {
        dateTime: String(event.time ?? ''),
        title: `time ${event.time}\nreceived ${event.received_at}`,
      }, formatTime(event.time))),
      cell('Primary Key', 'pk',
        el('span', { className: 'pk-text' }, pk),
        pk ? el('button', {
          type: 'button',
          className: 'history-link',
          title: 'History of this record',
          attrs: { 'aria-label': 'History of this record' },
          on: { click: (e) => { e.stopPropagation(); showHistory(event); } },
        }, '⟲') : null),
      cell('Action', 'action-cell', el('span', { className: 'action ' + (ACTION_CLASSES[event.action] || '') }, String(event.action ?? ''))),
      cell('Table', 'table', String(event.table ?? '')),
      cell('Message', 'message', String(event.message ?? '')),
      cell('Data', 'data', el('button', {
        type: 'button',
        className: 'view-diff',
        on: { click: (e) => { e.stopPropagation(); openDiff(indexOfRow(tr)); } },
      }, 'View Difference')),
    );
    tr.addEventListener('click', () => select(indexOfRow(tr)));
    tr.addEventListener('dblclick', () => openDiff(indexOfRow(tr)));
    return tr;
  }

  const indexOfRow = (tr) => Array.prototype.indexOf.call($('grid-body').children, tr);

  /** Selects a row; from the keyboard it also takes the focus, so Enter opens that row. */
  function select(index, { focus = false } = {}) {
    const rows = $('grid-body').children;
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (grid.selected >= 0 && rows[grid.selected]) {
      rows[grid.selected].classList.remove('selected');
      rows[grid.selected].removeAttribute('aria-selected');
    }
    grid.selected = index;
    rows[index].classList.add('selected');
    rows[index].setAttribute('aria-selected', 'true');
    if (focus) rows[index].focus({ preventScroll: true });
    rows[index].scrollIntoView({ block: 'nearest' });
    // Keep one page ahead of the selection.
    if (index >= rows.length - 5) loadMore();
  }

  function showHistory(event) {
    const pk = String(event.primary_key);
    run({
      q: `table:${formatValue(String(event.table))} primary_key:${formatValue(pk)}`,
      sort: 'time',
      order: 'desc',
    });
  }

  let sentinel = null;
  function watchSentinel() {
    sentinel = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore();
    }, { rootMargin: '300px' });
    sentinel.observe($('grid-more'));
  }

  function recheckSentinel() {
    if (!sentinel) return;
    sentinel.unobserve($('grid-more'));
    sentinel.observe($('grid-more'));
  }

  // ------------------------------------------------------------------------------------------
  // Column menu: sort, and a filter of one or more values (facets with counts, or typed)
  // ------------------------------------------------------------------------------------------

  const menu = { column: null, anchor: null, picked: [], abort: null };

  function openMenu(column, anchor) {
    if (menu.column === column) {
      closeMenu();
      return;
    }
    closeMenu();
    menu.column = column;
    menu.anchor = anchor;
    anchor.setAttribute('aria-expanded', 'true');
    const box = $('column-menu');
    $('menu-sort-asc').setAttribute('aria-pressed', String(view.sort === column.sort && view.order === 'asc'));
    $('menu-sort-desc').setAttribute('aria-pressed', String(view.sort === column.sort && view.order === 'desc'));
    const isTime = column.key === 'time';
    $('menu-filter').hidden = isTime;
    $('menu-time').hidden = !isTime;
    box.hidden = false;
    position(box, anchor);
    if (!isTime) {
      $('menu-filter-title').textContent = `Filter ${column.label}`;
      menu.picked = fieldValues(view.q, column.facet);
      $('menu-typed').value = '';
      $('menu-typed').focus();
      loadFacets(column);
    } else {
      $('menu-sort-desc').focus();
    }
  }

  function position(box, anchor) {
    const rect = anchor.getBoundingClientRect();
    const width = box.offsetWidth;
    const left = Math.max(8, Math.min(rect.right - width, document.documentElement.clientWidth - width - 8));
    box.style.left = `${left + window.scrollX}px`;
    box.style.top = `${rect.bottom + window.scrollY + 4}px`;
  }

  function closeMenu() {
    if (!menu.column) return;
    if (menu.abort) menu.abort.abort();
    menu.anchor.setAttribute('aria-expanded', 'false');
    $('column-menu').hidden = true;
    const anchor = menu.anchor;
    menu.column = null;
    menu.anchor = null;
    if (document.activeElement === document.body || $('column-menu').contains(document.activeElement)) anchor.focus();
  }

  async function loadFacets(column) {
    if (menu.abort) menu.abort.abort();
    menu.abort = new AbortController();
    const list = $('menu-values');
    list.replaceChildren(el('div', { className: 'menu-empty loading' }, 'Loading values…'));
    $('menu-note').textContent = '';
    // Values under the rest of the query, so other values of this column can be added.
    const q = withField(view.q, column.facet, []);
    try {
      const facets = await api('/api/v1/facets' + qs({ q, field: column.facet, limit: 50 }), { signal: menu.abort.signal });
      if (menu.column !== column) return;
      renderFacetValues(facets.values);
      if (facets.distinct > facets.values.length) {
        $('menu-note').textContent = `Top ${facets.values.length} of ${facets.distinct.toLocaleString('en-US')} values; type one to filter by another.`;
      }
    } catch (failure) {
      if (failure.name === 'AbortError') return;
      list.replaceChildren(el('div', { className: 'menu-empty' }, `Could not load values: ${failure.message}`));
    }
  }

  /** The list of values: those filtered on first (also when not among the top facets). */
  function renderFacetValues(values) {
    const list = $('menu-values');
    list.replaceChildren();
    const shown = new Set();
    const add = (raw, text, count) => {
      if (shown.has(raw)) return;
      shown.add(raw);
      const box = el('input', { type: 'checkbox', checked: menu.picked.includes(raw) });
      box.addEventListener('change', () => {
        if (box.checked) {
          if (!menu.picked.includes(raw)) menu.picked.push(raw);
        } else {
          menu.picked = menu.picked.filter((v) => v !== raw);
        }
      });
      list.append(el('label', { className: 'menu-value', title: text, data: { value: text } },
        box,
        el('span', { className: 'v' }, text),
        count === null ? null : el('span', { className: 'n' }, count.toLocaleString('en-US'))));
    };
    for (const raw of menu.picked) {
      const facet = values.find((v) => formatValue(v.value) === raw);
      add(raw, valueText(raw), facet ? facet.count : null);
    }
    // An empty value cannot be written as a filter (an empty phrase is not a value).
    for (const { value, count } of values) if (value !== '') add(formatValue(value), value, count);
    if (!shown.size) list.append(el('div', { className: 'menu-empty' }, 'No values under this query.'));
  }

  /** The column's clause becomes the checked values plus the typed one. */
  function applyMenu() {
    const column = menu.column;
    if (!column) return;
    const values = [...menu.picked];
    const typed = $('menu-typed').value.trim();
    if (typed) values.push(formatTyped(typed));
    closeMenu();
    run({ q: withField(view.q, column.facet, [...new Set(values)]) });
  }

  function addTyped(event) {
    event.preventDefault();
    applyMenu();
  }

  function setTimeRange(range) {
    const column = menu.column;
    closeMenu();
    if (!column) return;
    run({ q: withField(view.q, 'time', range ? [`>=${range}`] : []) });
  }

  // ------------------------------------------------------------------------------------------
  // Histogram: event counts over time; dragging across it selects a time range
  // ------------------------------------------------------------------------------------------

  const histogram = { buckets: [], interval: 0, abort: null, timer: 0 };

  async function loadHistogram() {
    if (histogram.abort) histogram.abort.abort();
    histogram.abort = new AbortController();
    try {
      const data = await api('/api/v1/histogram' + qs({ q: view.q, interval: 'auto' }), { signal: histogram.abort.signal });
      histogram.buckets = data.buckets.map((b) => ({ start: Date.parse(b.start), count: b.count }));
      histogram.interval = data.interval_seconds * 1000;
      $('histogram-label').textContent = `Activity · ${data.total.toLocaleString('en-US')} events · ${data.interval} per bar`;
      drawHistogram();
    } catch (failure) {
      if (failure.name === 'AbortError') return;
      histogram.buckets = [];
      $('histogram-label').textContent = 'Activity';
      drawHistogram();
    }
  }

  /** Reloads the histogram at most every few seconds (live mode). */
  function refreshHistogramSoon() {
    if (histogram.timer) return;
    histogram.timer = setTimeout(() => {
      histogram.timer = 0;
      loadHistogram();
    }, 3000);
  }

  const PLOT = { top: 4, bottom: 16 };

  function drawHistogram() {
    const box = $('histogram');
    const width = Math.max(100, box.clientWidth);
    const height = Math.max(40, box.clientHeight);
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Events over time' });
    const buckets = histogram.buckets;
    const plotHeight = height - PLOT.top - PLOT.bottom;
    root.append(svg('line', { class: 'baseline', x1: 0, x2: width, y1: height - PLOT.bottom + 0.5, y2: height - PLOT.bottom + 0.5 }));
    if (!buckets.length) {
      const text = svg('text', { class: 'empty', x: width / 2, y: height / 2, 'text-anchor': 'middle' });
      text.textContent = 'No events';
      root.append(text);
    } else {
      const max = Math.max(1, ...buckets.map((b) => b.count));
      const step = width / buckets.length;
      const gap = step > 4 ? 1 : 0;
      buckets.forEach((bucket, i) => {
        if (!bucket.count) return;
        const h = Math.max(1, (bucket.count / max) * plotHeight);
        const bar = svg('rect', { class: 'bar', x: i * step, y: PLOT.top + plotHeight - h, width: Math.max(0.5, step - gap), height: h });
        const title = svg('title');
        title.textContent = `${formatTime(new Date(bucket.start).toISOString())} · ${bucket.count.toLocaleString('en-US')} events`;
        bar.append(title);
        root.append(bar);
      });
      const ticks = Math.min(buckets.length, Math.max(2, Math.floor(width / 160)));
      for (let t = 0; t < ticks; t++) {
        const i = Math.round((t * (buckets.length - 1)) / Math.max(1, ticks - 1));
        const x = i * step + step / 2;
        const anchor = t === 0 ? 'start' : t === ticks - 1 ? 'end' : 'middle';
        const label = svg('text', { class: 'axis', x: t === 0 ? 0 : t === ticks - 1 ? width : x, y: height - 3, 'text-anchor': anchor });
        label.textContent = formatTime(new Date(buckets[i].start).toISOString()).slice(0, 16);
        root.append(label);
      }
    }
    const brush = svg('rect', { class: 'brush', x: 0, y: 0, width: 0, height: height - PLOT.bottom, visibility: 'hidden' });
    root.append(brush);
    box.replaceChildren(root);
    histogram.brush = brush;
    histogram.width = width;
  }

  function bucketAt(x) {
    const n = histogram.buckets.length;
    return Math.max(0, Math.min(n - 1, Math.floor((x / histogram.width) * n)));
  }

  function wireHistogramDrag() {
    const box = $('histogram');
    let start = null;
    const xOf = (event) => event.clientX - box.getBoundingClientRect().left;
    box.addEventListener('pointerdown', (event) => {
      if (!histogram.buckets.length || event.button !== 0) return;
      start = xOf(event);
      box.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    box.addEventListener('pointermove', (event) => {
      if (start === null) return;
      const x = Math.max(0, Math.min(histogram.width, xOf(event)));
      histogram.brush.setAttribute('x', String(Math.min(start, x)));
      histogram.brush.setAttribute('width', String(Math.abs(x - start)));
      histogram.brush.setAttribute('visibility', 'visible');
    });
    const finish = (event) => {
      if (start === null) return;
      const end = Math.max(0, Math.min(histogram.width, xOf(event)));
      const [a, b] = [bucketAt(Math.min(start, end)), bucketAt(Math.max(start, end))];
      start = null;
      const from = histogram.buckets[a].start;
      // Ranges include both ends: stop a millisecond before the next bucket.
      const to = histogram.buckets[b].start + histogram.interval - 1;
      const range = `${new Date(from).toISOString()}..${new Date(to).toISOString()}`;
      run({ q: withField(view.q, 'time', [range]) });
    };
    box.addEventListener('pointerup', finish);
    box.addEventListener('pointercancel', () => {
      start = null;
      if (histogram.brush) histogram.brush.setAttribute('visibility', 'hidden');
    });
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawHistogram, 100);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Live mode: new matching events arrive over Server-Sent Events
  // ------------------------------------------------------------------------------------------

  let source = null;

  function stopLive() {
    if (source) source.close();
    source = null;
    $('app').dataset.live = 'off';
    $('live').closest('label').classList.remove('connected');
  }

  function restartLive() {
    stopLive();
    if (!view.live || $('app').hidden) return;
    source = new EventSource('/api/v1/stream' + qs({ q: view.q }));
    const label = $('live').closest('label');
    label.classList.remove('connected');
    $('app').dataset.live = 'connecting';
    source.addEventListener('open', () => {
      label.classList.add('connected');
      label.title = 'Live: connected';
      $('app').dataset.live = 'open';
    });
    source.addEventListener('event', (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      liveEvent(event);
    });
    source.addEventListener('error', (message) => {
      // An `event: error` from the server carries a message; a dropped connection does not
      // (EventSource reconnects by itself).
      if (source && source.readyState !== EventSource.OPEN) {
        label.classList.remove('connected');
        label.title = 'Live: reconnecting…';
        $('app').dataset.live = 'connecting';
      }
      if (message.data) {
        try {
          showError({ message: JSON.parse(message.data).message });
        } catch {
          /* not ours */
        }
      }
    });
  }

  /** Where a live event goes: into the grid when the order is newest first, else a notice. */
  function liveEvent(event) {
    if (grid.seqs.has(event.seq)) return;
    grid.total += 1;
    refreshHistogramSoon();
    const newestFirst = view.order === 'desc' && ['time', 'received_at', 'seq'].includes(view.sort);
    if (!newestFirst || grid.loading) {
      grid.newCount += 1;
      const button = $('new-events');
      button.textContent = `${grid.newCount} new ${grid.newCount === 1 ? 'event' : 'events'} · show`;
      button.hidden = false;
      renderTotal();
      return;
    }
    const key = (e) => (view.sort === 'seq' ? e.seq : Date.parse(view.sort === 'time' ? e.time : e.received_at));
    let at = grid.rows.findIndex((row) => key(row) < key(event) || (key(row) === key(event) && row.seq < event.seq));
    if (at < 0) {
      if (grid.cursor) {
        renderTotal();
        return; // it belongs on a later page
      }
      at = grid.rows.length;
    }
    grid.seqs.add(event.seq);
    grid.rows.splice(at, 0, event);
    const tr = rowFor(event);
    tr.classList.add('fresh');
    const body = $('grid-body');
    body.insertBefore(tr, body.children[at] || null);
    if (grid.selected >= at) grid.selected += 1;
    $('grid-empty').hidden = true;
    renderTotal();
  }

  // ------------------------------------------------------------------------------------------
  // View Difference
  // ------------------------------------------------------------------------------------------

  const diffView = { index: -1, event: null, showUnchanged: false, expanded: new Set(), tab: 'diff' };

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const isContainer = (v) => v !== null && typeof v === 'object';
  const pointerToken = (key) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

  /**
   * Rows of the side-by-side view: one per scalar (or empty container) at any depth of either
   * side, by JSON Pointer path, each marked with the server's diff op that covers it.
   */
  function diffRows(before, after, changes) {
    const ops = new Map((changes || []).map((change) => [change.path, change.op]));
    const opAt = (path) => {
      for (let p = path; ; p = p.slice(0, p.lastIndexOf('/'))) {
        if (ops.has(p)) return ops.get(p);
        if (p === '') return null;
      }
    };
    const rows = [];
    const walk = (b, a, path) => {
      const bothObjects = isObject(b) && isObject(a);
      const bothArrays = Array.isArray(b) && Array.isArray(a);
      const only = b === undefined ? a : a === undefined ? b : undefined;
      if (bothObjects || bothArrays || (only !== undefined && isContainer(only))) {
        let keys;
        if (bothArrays || Array.isArray(only)) {
          const length = Math.max(Array.isArray(b) ? b.length : 0, Array.isArray(a) ? a.length : 0);
          keys = Array.from({ length }, (_, i) => i);
        } else {
          keys = Object.keys(isObject(b) ? b : {});
          for (const key of Object.keys(isObject(a) ? a : {})) if (!keys.includes(key)) keys.push(key);
        }
        if (keys.length && path !== null) {
          for (const key of keys) {
            const child = (side) => (isContainer(side) ? side[key] : undefined);
            walk(child(b), child(a), `${path}/${pointerToken(key)}`);
          }
          return;
        }
      }
      let op = opAt(path);
      if (!op && JSON.stringify(b) !== JSON.stringify(a)) op = b === undefined ? 'add' : a === undefined ? 'remove' : 'replace';
      rows.push({ path, before: b, after: a, op });
    };
    walk(before === null ? undefined : before, after === null ? undefined : after, '');
    return rows.filter((row) => !(row.path === '' && row.before === undefined && row.after === undefined));
  }

  const OP_MARK = { add: '+', remove: '−', replace: '~' };
  const OP_CLASS = { add: 'added', remove: 'removed', replace: 'changed' };
  const OP_NAME = { add: 'added', remove: 'removed', replace: 'changed' };

  function valueCell(value, side) {
    if (value === undefined) return el('td', { className: `${side} absent` }, '—');
    const text = isContainer(value) ? JSON.stringify(value, null, 2) : JSON.stringify(value);
    return el('td', { className: side }, text);
  }

  function renderDiffTable(rows) {
    const table = el('table', { className: 'diff-table' },
      el('thead', null, el('tr', null,
        el('th', { className: 'c-mark', title: 'Change' }, ''),
        el('th', { className: 'c-path' }, 'Field (JSON Pointer)'),
        el('th', null, 'Before'),
        el('th', null, 'After'))));
    const body = el('tbody');
    let i = 0;
    let group = 0;
    while (i < rows.length) {
      if (!rows[i].op && !diffView.showUnchanged) {
        let j = i;
        while (j < rows.length && !rows[j].op) j++;
        const id = group++;
        // A single unchanged field takes no more room than its fold would.
        if (j - i === 1 || diffView.expanded.has(id)) {
          for (let k = i; k < j; k++) body.append(diffRow(rows[k]));
        } else {
          const count = j - i;
          body.append(el('tr', { className: 'fold' }, el('td', { colSpan: 4 },
            el('button', {
              type: 'button',
              on: { click: () => { diffView.expanded.add(id); renderDiffBody(); } },
            }, `⋯ ${count} unchanged ${count === 1 ? 'field' : 'fields'} (show)`))));
        }
        i = j;
      } else {
        body.append(diffRow(rows[i]));
        i++;
      }
    }
    table.append(body);
    return table;
  }

  function diffRow(row) {
    const tr = el('tr', { className: row.op ? OP_CLASS[row.op] : 'same', data: { path: row.path } },
      el('td', { className: 'c-mark', title: row.op ? OP_NAME[row.op] : 'unchanged' }, row.op ? OP_MARK[row.op] : ''),
      el('td', { className: 'c-path' }, row.path || '(whole record)'),
      valueCell(row.before, 'before'),
      valueCell(row.after, 'after'));
    return tr;
  }

  function renderDiffBody() {
    const event = diffView.event;
    const body = $('diff-body');
    body.replaceChildren();
    const before = event.before ?? null;
    const after = event.after ?? null;
    const rows = diffRows(before, after, event.diff);
    const counts = { add: 0, remove: 0, replace: 0 };
    for (const row of rows) if (row.op) counts[row.op] += 1;
    let note = null;
    if (before === null && after === null) note = 'This event carries no record data (no before and no after).';
    else if (before === null) note = 'Created: there was no record before, every field is new.';
    else if (after === null) note = 'Deleted: the record as it was; there is nothing after.';
    else if (!event.diff || event.diff.length === 0) note = 'No field changed.';
    if (note) body.append(el('p', { className: 'diff-note' }, note));
    if (rows.length) {
      body.append(el('div', { className: 'diff-legend' },
        el('span', null, `+ ${counts.add} added`),
        el('span', null, `− ${counts.remove} removed`),
        el('span', null, `~ ${counts.replace} changed`),
        el('span', { className: 'muted' }, `${rows.length - counts.add - counts.remove - counts.replace} unchanged`)));
      body.append(renderDiffTable(rows));
    }
    if (event.context && Object.keys(event.context).length) {
      body.append(el('details', { className: 'diff-context', open: true },
        el('summary', null, 'Context'),
        el('pre', null, JSON.stringify(event.context, null, 2))));
    }
  }

  // The latest signed tree size of each log: the tenant's events ('') and its trail log.
  const checkpointSizes = { '': 0, trail: 0 };

  /** The log an event is in: auditlog's records of its own use live in the trail log. */
  const logOf = (event) => (String(event.tenant || '').endsWith('.trail') ? 'trail' : '');

  async function openDiff(index) {
    if (index < 0 || index >= grid.rows.length) return;
    closeMenu();
    select(index);
    const event = grid.rows[index];
    diffView.index = index;
    diffView.event = event;
    diffView.expanded = new Set();
    $('diff-title').textContent = `${event.action} · ${event.table}${event.primary_key !== undefined ? ` · ${event.primary_key}` : ''}`;
    $('diff-sub').textContent = [event.user, event.ip, `${formatTime(event.time)} ${zoneName()}`, event.message].filter(Boolean).join(' · ');
    renderDiffBody();
    const raw = { ...event };
    delete raw.diff;
    $('raw-body').textContent = JSON.stringify(raw, null, 2);
    $('diff-seq').textContent = String(event.seq);
    $('diff-leaf').textContent = String(event.leaf_hash ?? '');
    $('diff-history').hidden = event.primary_key === undefined;
    $('diff-prev').disabled = index === 0;
    $('diff-next').disabled = index === grid.rows.length - 1 && !grid.cursor;
    setTab(diffView.tab);
    const log = logOf(event);
    setProofLink(event.seq, log);
    const dialog = $('diff');
    if (!dialog.open) dialog.showModal();
    // Learn the latest signed tree size, so the proof names a checkpoint one can verify.
    try {
      const note = await api('/api/v1/checkpoint' + qs({ log }), { text: true });
      const size = Number(String(note).split('\n')[1]);
      if (Number.isSafeInteger(size)) {
        checkpointSizes[log] = size;
        if (diffView.event === event) setProofLink(event.seq, log);
      }
    } catch {
      // No checkpoint yet: the link names the smallest tree holding the event.
    }
  }

  function setProofLink(seq, log) {
    const checkpointSize = checkpointSizes[log];
    const size = checkpointSize >= seq ? checkpointSize : seq;
    $('diff-proof').href = '/api/v1/proof/inclusion' + qs({ seq, size, log });
    $('diff-proof-size').textContent =
      checkpointSize >= seq ? `in the signed checkpoint of size ${size}` : `in the tree of size ${size} (not yet in a signed checkpoint)`;
  }

  function setTab(tab) {
    diffView.tab = tab;
    $('tab-diff').setAttribute('aria-selected', String(tab === 'diff'));
    $('tab-raw').setAttribute('aria-selected', String(tab === 'raw'));
    $('diff-body').hidden = tab !== 'diff';
    $('raw-body').hidden = tab !== 'raw';
  }

  async function stepDiff(delta) {
    const next = diffView.index + delta;
    if (next >= grid.rows.length && grid.cursor) await loadMore();
    if (next >= 0 && next < grid.rows.length) openDiff(next);
  }

  function closeDiff() {
    const dialog = $('diff');
    if (dialog.open) dialog.close();
  }

  // ------------------------------------------------------------------------------------------
  // Keyboard
  // ------------------------------------------------------------------------------------------

  function onKey(event) {
    if ($('app').hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    const dialogOpen = $('diff').open;
    if (event.key === 'Escape') {
      if (menu.column) {
        event.preventDefault();
        closeMenu();
      } else if (document.activeElement === $('search')) {
        $('search').blur();
      }
      return; // the dialog closes itself on Escape
    }
    if (dialogOpen) {
      if (event.key === 'ArrowLeft' && !isTyping(event.target)) stepDiff(-1);
      if (event.key === 'ArrowRight' && !isTyping(event.target)) stepDiff(1);
      return;
    }
    if (isTyping(event.target) || menu.column) return;
    if (event.key === '/') {
      event.preventDefault();
      $('search').focus();
      $('search').select();
    } else if (event.key === 'ArrowDown' || event.key === 'j') {
      event.preventDefault();
      select(grid.selected + 1, { focus: true });
    } else if (event.key === 'ArrowUp' || event.key === 'k') {
      event.preventDefault();
      select(grid.selected < 0 ? 0 : grid.selected - 1, { focus: true });
    } else if (event.key === 'Enter' && grid.selected >= 0 && !(event.target instanceof HTMLButtonElement) && !(event.target instanceof HTMLAnchorElement)) {
      event.preventDefault();
      openDiff(grid.selected);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Wiring and start
  // ------------------------------------------------------------------------------------------

  function wire() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    // The log's records of its own use are left out of searches unless a table clause asks.
    $('trail-view').addEventListener('click', () => run({ q: 'table:auditlog.*' }));
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      run({ q: $('search').value.trim() });
    });
    $('refresh').addEventListener('click', () => run({}, { push: false }));
    $('new-events').addEventListener('click', () => run({}, { push: false }));
    $('clear-query').addEventListener('click', () => run({ q: '' }));
    $('load-more').addEventListener('click', loadMore);
    $('live').addEventListener('change', () => {
      view.live = $('live').checked;
      writeAddress(false);
      renderControls();
      restartLive();
    });
    $('tz-utc').addEventListener('click', () => setZone('utc'));
    $('tz-local').addEventListener('click', () => setZone('local'));
    $('menu-sort-asc').addEventListener('click', () => sortFromMenu('asc'));
    $('menu-sort-desc').addEventListener('click', () => sortFromMenu('desc'));
    $('menu-typed-form').addEventListener('submit', addTyped);
    $('menu-apply').addEventListener('click', applyMenu);
    $('menu-clear').addEventListener('click', () => {
      menu.picked = [];
      $('menu-typed').value = '';
      applyMenu();
    });
    for (const button of $('menu-time').querySelectorAll('button[data-range]')) {
      button.addEventListener('click', () => setTimeRange(button.dataset.range));
    }
    document.addEventListener('pointerdown', (event) => {
      if (menu.column && !$('column-menu').contains(event.target) && !menu.anchor.contains(event.target)) closeMenu();
    });
    document.addEventListener('keydown', onKey);
    $('diff-close').addEventListener('click', closeDiff);
    $('diff-prev').addEventListener('click', () => stepDiff(-1));
    $('diff-next').addEventListener('click', () => stepDiff(1));
    $('tab-diff').addEventListener('click', () => setTab('diff'));
    $('tab-raw').addEventListener('click', () => setTab('raw'));
    $('show-unchanged').addEventListener('change', () => {
      diffView.showUnchanged = $('show-unchanged').checked;
      renderDiffBody();
    });
    $('diff-history').addEventListener('click', () => {
      const event = diffView.event;
      closeDiff();
      if (event) showHistory(event);
    });
    // A click on the backdrop (outside the dialog's box) closes it.
    $('diff').addEventListener('click', (event) => {
      if (event.target !== $('diff')) return;
      const rect = $('diff').getBoundingClientRect();
      const inside = event.clientX >= rect.left && event.clientX <= rect.right && event.clientY >= rect.top && event.clientY <= rect.bottom;
      if (!inside) closeDiff();
    });
    window.addEventListener('popstate', () => {
      readAddress();
      run({}, { push: false });
    });
    watchSentinel();
    wireHistogramDrag();
  }

  function sortFromMenu(order) {
    const column = menu.column;
    closeMenu();
    if (column) run({ sort: column.sort, order });
  }

  function setZone(tz) {
    if (view.tz === tz) return;
    view.tz = tz;
    writeAddress(false);
    renderControls();
    for (const tr of $('grid-body').children) {
      const event = grid.rows[indexOfRow(tr)];
      const time = tr.querySelector('time');
      if (event && time) time.textContent = formatTime(event.time);
    }
    drawHistogram();
  }

  async function start() {
    readAddress();
    wire();
    try {
      session = await api('/api/v1/session', { quiet401: true });
      showApp();
    } catch (failure) {
      if (failure.status === 401) {
        showSignin();
      } else {
        showSignin(`The server could not be reached: ${failure.message}`);
      }
    }
  }

  start();
})();
