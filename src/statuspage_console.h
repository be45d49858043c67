/* statuspage_console.h: the operator console part of the status page
 * (statuspage.c puts it before </body>): a Tasks view with filters, keyset
 * paging, the whole last_error and payload on demand and retry/cancel
 * buttons (the same token prompt as the stage controls), and a log panel
 * that follows a stage's worker log. Worker output and errors are set with
 * textContent only: never parsed as HTML. Trends are inline SVG paths. Uses the page's helpers (el, cell,
 * badge, dur, message, askToken, getJSON, last). */
#ifndef PGWAKE_STATUSPAGE_CONSOLE_H
#define PGWAKE_STATUSPAGE_CONSOLE_H

#define STATUSPAGE_CONSOLE \
    "<style>\n" \
    "#tasks td.err { max-width: 40em; white-space: pre-wrap; word-break: break-word; font-family: monospace; font-size: .9em; }\n" \
    "#tdetail, #log { background: #fff; border: 1px solid #e3e3e3; padding: .5em; max-height: 24em; overflow: auto;\n" \
    "  white-space: pre-wrap; word-break: break-word; font-size: .85em; }\n" \
    "#tdetail:empty { display: none; }\n" \
    "#runs tr { cursor: pointer; }\n" \
    ".trend { display: inline-block; margin: 0 1em .6em 0; vertical-align: top; }\n" \
    ".trend svg { background: #fff; border: 1px solid #e3e3e3; display: block; }\n" \
    ".trend path { fill: none; stroke-width: 1.5; }\n" \
    ".s-claimable { stroke: #1565c0; } .s-busy { stroke: #2e7d32; } .s-done { stroke: #757575; } .s-crashes { stroke: #c62828; }\n" \
    ".k-claimable { color: #1565c0; } .k-busy { color: #2e7d32; } .k-done { color: #757575; } .k-crashes { color: #c62828; }\n" \
    "#deaths pre { margin: 0; font-size: .85em; white-space: pre-wrap; word-break: break-word; max-width: 50em; }\n" \
    ".filters { margin: .3em 0 .5em; } .filters label { margin-right: .8em; }\n" \
    ".dead { background: #c62828; } .pending, .leased { background: #1565c0; } .retrying { background: #ef6c00; }\n" \
    "</style>\n" \
    "<h2>Trends <span class=\"muted\">(last hour, per minute)</span></h2>\n" \
    "<div id=\"trends\"></div>\n" \
    "<h2>Tasks</h2>\n" \
    "<div class=\"filters\">\n" \
    "<label>stage <select id=\"tstage\"><option value=\"\">any</option></select></label>\n" \
    "<label>state <select id=\"tstate\"><option value=\"\">any</option><option>pending</option><option>leased</option><option>dead</option><option>done</option></select></label>\n" \
    "<label>run <input id=\"trun\" size=\"7\" inputmode=\"numeric\"></label>\n" \
    "<button type=\"button\" id=\"tnewest\">newest</button><button type=\"button\" id=\"tolder\">older</button>\n" \
    "<span id=\"tinfo\" class=\"muted\"></span>\n" \
    "</div>\n" \
    "<table>\n" \
    "<thead><tr><th>id</th><th>stage</th><th>state</th><th>attempts</th><th>age</th><th>owner</th><th>last error</th><th></th></tr></thead>\n" \
    "<tbody id=\"tasks\"></tbody>\n" \
    "</table>\n" \
    "<pre id=\"tdetail\"></pre>\n" \
    "<h2>Recent deaths <span class=\"muted\">(any host, last hour)</span></h2>\n" \
    "<table>\n" \
    "<thead><tr><th>worker</th><th>stage</th><th>host</th><th>reason</th><th>when</th><th>last lines</th></tr></thead>\n" \
    "<tbody id=\"deaths\"></tbody>\n" \
    "</table>\n" \
    "<h2>Worker log</h2>\n" \
    "<div class=\"filters\"><label>stage <select id=\"lstage\"></select></label><span id=\"linfo\" class=\"muted\"></span></div>\n" \
    "<pre id=\"log\"></pre>\n" \
    "<script>\n" \
    "\"use strict\";\n" \
    "var tcursor = null, tnext = null, tstack = [];\n" \
    "\n" \
    "function fillStages(sel, withAny) {\n" \
    "  if (!last) return;\n" \
    "  var have = {};\n" \
    "  for (var i = 0; i < sel.options.length; i++) have[sel.options[i].value] = true;\n" \
    "  last.stages.forEach(function (st) {\n" \
    "    if (!have[st.name]) { var o = el(\"option\", st.name); o.value = st.name; sel.appendChild(o); }\n" \
    "  });\n" \
    "}\n" \
    "\n" \
    "function taskQuery() {\n" \
    "  var q = [], v;\n" \
    "  if ((v = document.getElementById(\"tstage\").value)) q.push(\"stage=\" + encodeURIComponent(v));\n" \
    "  if ((v = document.getElementById(\"tstate\").value)) q.push(\"state=\" + encodeURIComponent(v));\n" \
    "  if ((v = document.getElementById(\"trun\").value.trim())) q.push(\"run=\" + encodeURIComponent(v));\n" \
    "  if (tcursor) q.push(\"before=\" + tcursor);\n" \
    "  q.push(\"limit=50\");\n" \
    "  return \"/tasks?\" + q.join(\"&\");\n" \
    "}\n" \
    "\n" \
    "function taskAction(id, action, retried) {\n" \
    "  var headers = { \"Content-Type\": \"application/json\", \"X-Requested-With\": \"pgwake-page\" };\n" \
    "  var token = sessionStorage.getItem(TOKEN_KEY);\n" \
    "  if (!token && last && last.control_token_required) token = askToken();\n" \
    "  if (token) headers[\"X-Pgwake-Token\"] = token;\n" \
    "  fetch(\"/tasks/\" + id + \"/\" + action, { method: \"POST\", headers: headers, body: \"{}\" })\n" \
    "    .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })\n" \
    "    .then(function (x) {\n" \
    "      if (x[0] === 403 && last && last.control_token_required && !retried) {\n" \
    "        sessionStorage.removeItem(TOKEN_KEY);\n" \
    "        if (askToken()) return taskAction(id, action, true);\n" \
    "      }\n" \
    "      if (x[1].ok) message(action + \" task \" + id + \": \" + x[1].message, false);\n" \
    "      else message(action + \" task \" + id + \": \" + (x[1].error || \"HTTP \" + x[0]), true);\n" \
    "      loadTasks();\n" \
    "    })\n" \
    "    .catch(function (e) { message(action + \" task \" + id + \": \" + e, true); });\n" \
    "}\n" \
    "\n" \
    "function showTask(id) {\n" \
    "  getJSON(\"/tasks/\" + id).then(function (t) {\n" \
    "    document.getElementById(\"tdetail\").textContent =\n" \
    "      \"task \" + t.id + \" (\" + t.stage + \", \" + t.state + \", attempt \" + t.attempts + \"/\" + t.max_attempts +\n" \
    "      (t.run_id ? \", run \" + t.run_id : \"\") + \")\\n\\nlast_error:\\n\" + (t.last_error === null ? \"(none)\" : t.last_error) +\n" \
    "      \"\\n\\npayload:\\n\" + JSON.stringify(t.payload, null, 2) +\n" \
    "      (t.result !== null ? \"\\n\\nresult:\\n\" + JSON.stringify(t.result, null, 2) : \"\");\n" \
    "  }).catch(function (e) { document.getElementById(\"tdetail\").textContent = \"task \" + id + \": \" + e.message; });\n" \
    "}\n" \
    "\n" \
    "function taskButton(label, fn) {\n" \
    "  var b = el(\"button\", label, \"t-\" + label);\n" \
    "  b.type = \"button\";\n" \
    "  b.addEventListener(\"click\", fn);\n" \
    "  return b;\n" \
    "}\n" \
    "\n" \
    "function renderTasks(data) {\n" \
    "  var tb = document.getElementById(\"tasks\");\n" \
    "  tb.textContent = \"\";\n" \
    "  tnext = data.next_before;\n" \
    "  document.getElementById(\"tolder\").disabled = !tnext;\n" \
    "  document.getElementById(\"tinfo\").textContent = (tcursor ? \"below task \" + tcursor : \"newest\") +\n" \
    "    \" \\u00b7 \" + data.tasks.length + \" shown\";\n" \
    "  if (!data.tasks.length) cell(tb.appendChild(el(\"tr\")), \"no tasks\").colSpan = 8;\n" \
    "  data.tasks.forEach(function (t) {\n" \
    "    var tr = el(\"tr\");\n" \
    "    cell(tr, t.id);\n" \
    "    cell(tr, t.stage);\n" \
    "    cell(tr, badge(t.retrying ? \"retrying\" : t.state));\n" \
    "    cell(tr, t.attempts + \"/\" + t.max_attempts);\n" \
    "    cell(tr, dur(t.age_s));\n" \
    "    cell(tr, t.owner || \"\");\n" \
    "    cell(tr, (t.last_error || \"\") + (t.last_error_cut ? \"\\u2026\" : \"\")).className = \"err\";\n" \
    "    var td = cell(tr);\n" \
    "    td.appendChild(taskButton(\"details\", function () { showTask(t.id); }));\n" \
    "    if (t.state === \"dead\" || t.state === \"pending\")\n" \
    "      td.appendChild(taskButton(\"retry\", function () { taskAction(t.id, \"retry\", false); }));\n" \
    "    if (t.state === \"pending\")\n" \
    "      td.appendChild(taskButton(\"cancel\", function () { taskAction(t.id, \"cancel\", false); }));\n" \
    "    tb.appendChild(tr);\n" \
    "  });\n" \
    "}\n" \
    "\n" \
    "function loadTasks() {\n" \
    "  fillStages(document.getElementById(\"tstage\"));\n" \
    "  getJSON(taskQuery()).then(renderTasks).catch(function (e) {\n" \
    "    document.getElementById(\"tinfo\").textContent = \"tasks unavailable: \" + e.message;\n" \
    "  });\n" \
    "}\n" \
    "\n" \
    "function loadLog() {\n" \
    "  var sel = document.getElementById(\"lstage\");\n" \
    "  fillStages(sel);\n" \
    "  if (!sel.value) return;\n" \
    "  getJSON(\"/stages/\" + encodeURIComponent(sel.value) + \"/log?lines=200\").then(function (j) {\n" \
    "    var pre = document.getElementById(\"log\");\n" \
    "    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;\n" \
    "    pre.textContent = j.lines.join(\"\\n\");\n" \
    "    if (atEnd) pre.scrollTop = pre.scrollHeight;\n" \
    "    document.getElementById(\"linfo\").textContent = \" \" + j.file + \" \\u00b7 \" + j.size + \" bytes\";\n" \
    "  }).catch(function (e) { document.getElementById(\"linfo\").textContent = \" log unavailable: \" + e.message; });\n" \
    "}\n" \
    "\n" \
    "[\"tstage\", \"tstate\", \"trun\"].forEach(function (id) {\n" \
    "  document.getElementById(id).addEventListener(\"change\", function () { tcursor = null; tstack = []; loadTasks(); });\n" \
    "});\n" \
    "document.getElementById(\"tnewest\").addEventListener(\"click\", function () { tcursor = null; tstack = []; loadTasks(); });\n" \
    "document.getElementById(\"tolder\").addEventListener(\"click\", function () {\n" \
    "  if (tnext) { tstack.push(tcursor); tcursor = tnext; loadTasks(); }\n" \
    "});\n" \
    "document.getElementById(\"lstage\").addEventListener(\"change\", loadLog);\n" \
    "/* A run's row in Recent runs opens that run in the Tasks view: its tasks,\n" \
    " * dead ones first in the state filter's reach. */\n" \
    "document.getElementById(\"runs\").addEventListener(\"click\", function (e) {\n" \
    "  var tr = e.target.closest(\"tr\"), td = tr && tr.querySelector(\"td\");\n" \
    "  if (!td || !/^[0-9]+$/.test(td.textContent)) return;\n" \
    "  document.getElementById(\"trun\").value = td.textContent;\n" \
    "  tcursor = null; tstack = [];\n" \
    "  loadTasks();\n" \
    "  document.getElementById(\"tasks\").scrollIntoView();\n" \
    "});\n" \
    "function loadDeaths() {\n" \
    "  getJSON(\"/deaths\").then(function (j) {\n" \
    "    var tb = document.getElementById(\"deaths\");\n" \
    "    tb.textContent = \"\";\n" \
    "    if (!j.deaths.length) cell(tb.appendChild(el(\"tr\")), \"none\").colSpan = 6;\n" \
    "    j.deaths.forEach(function (w) {\n" \
    "      var tr = el(\"tr\");\n" \
    "      cell(tr, w.id + (w.pid ? \" [\" + w.pid + \"]\" : \"\"));\n" \
    "      cell(tr, w.stage);\n" \
    "      cell(tr, w.host);\n" \
    "      cell(tr, w.reason);\n" \
    "      cell(tr, dur(w.ago_s) + \" ago\");\n" \
    "      cell(tr, el(\"pre\", w.last_lines || \"\"));\n" \
    "      tb.appendChild(tr);\n" \
    "    });\n" \
    "  }).catch(function () {});\n" \
    "}\n" \
    "var SVGNS = \"http://www.w3.org/2000/svg\", SERIES = [\"claimable\", \"busy\", \"done\", \"crashes\"];\n" \
    "function trendChart(st) {\n" \
    "  var W = 360, H = 80, n = st.busy.length, max = 1;\n" \
    "  SERIES.forEach(function (k) { st[k].forEach(function (v) { if (v > max) max = v; }); });\n" \
    "  var box = el(\"div\", null, \"trend\");\n" \
    "  var title = el(\"div\");\n" \
    "  title.appendChild(el(\"strong\", st.name));\n" \
    "  SERIES.forEach(function (k) {\n" \
    "    var sum = 0;\n" \
    "    st[k].forEach(function (v) { sum += v || 0; });\n" \
    "    title.appendChild(el(\"span\", \" \\u25a0 \" + k + (k === \"done\" || k === \"crashes\" ? \" \" + sum : \"\"), \"k-\" + k));\n" \
    "  });\n" \
    "  title.appendChild(el(\"span\", \" (max \" + max + \")\", \"muted\"));\n" \
    "  box.appendChild(title);\n" \
    "  var svg = document.createElementNS(SVGNS, \"svg\");\n" \
    "  svg.setAttribute(\"width\", W); svg.setAttribute(\"height\", H);\n" \
    "  svg.setAttribute(\"viewBox\", \"0 0 \" + W + \" \" + H);\n" \
    "  SERIES.forEach(function (k) {\n" \
    "    var d = \"\";\n" \
    "    st[k].forEach(function (v, i) {\n" \
    "      var x = (i * (W - 4) / (n - 1) + 2).toFixed(1), y = (H - 3 - (v || 0) * (H - 6) / max).toFixed(1);\n" \
    "      d += (i ? \" L\" : \"M\") + x + \" \" + y;\n" \
    "    });\n" \
    "    var path = document.createElementNS(SVGNS, \"path\");\n" \
    "    path.setAttribute(\"d\", d);\n" \
    "    path.setAttribute(\"class\", \"s-\" + k);\n" \
    "    svg.appendChild(path);\n" \
    "  });\n" \
    "  box.appendChild(svg);\n" \
    "  return box;\n" \
    "}\n" \
    "function loadTrends() {\n" \
    "  getJSON(\"/trends\").then(function (j) {\n" \
    "    var div = document.getElementById(\"trends\");\n" \
    "    div.textContent = \"\";\n" \
    "    j.stages.forEach(function (st) { div.appendChild(trendChart(st)); });\n" \
    "  }).catch(function () {});\n" \
    "}\n" \
    "var ticks = 0;\n" \
    "function consoleTick() { if (!tcursor) loadTasks(); loadLog(); if (ticks % 3 === 0) loadDeaths(); if (ticks++ % 5 === 0) loadTrends(); }\n" \
    "setTimeout(consoleTick, 300);\n" \
    "setInterval(consoleTick, 2000);\n" \
    "</script>\n"

#endif
