"use strict";
// Renders the report's tables from the JSON embedded in the page: search, filters and pages,
// so a report of 100k users opens at once (only one page of rows is in the DOM).
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const strings = data.strings;
  const lower = strings.map((s) => s.toLowerCase());
  const PAGE = 100;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setUp(table) {
    const root = document.getElementById("table-" + table.id);
    const controls = el("div", { class: "controls" });
    const search = el("input", { type: "search", placeholder: "Search " + table.search,
      "aria-label": "Search " + table.title, "data-role": "search" });
    controls.appendChild(search);
    const selects = table.filters.map((column) => {
      const index = table.columns.indexOf(column);
      const counts = new Map();
      for (const row of table.rows) counts.set(row[index], (counts.get(row[index]) || 0) + 1);
      const select = el("select", { "aria-label": column, "data-column": column });
      select.appendChild(el("option", { value: "" }, "any " + column.toLowerCase()));
      [...counts.keys()].sort((a, b) => strings[a].localeCompare(strings[b])).forEach((k) => {
        select.appendChild(el("option", { value: String(k) }, strings[k] + " (" + counts.get(k) + ")"));
      });
      controls.appendChild(select);
      return [index, select];
    });
    const shown = el("span", { "data-role": "count" });
    controls.appendChild(shown);
    root.appendChild(controls);
    const grid = el("table");
    const head = el("tr");
    table.columns.forEach((c) => head.appendChild(el("th", table.numeric.includes(c) ? { class: "num" } : {}, c)));
    grid.appendChild(el("thead")).appendChild(head);
    const body = grid.appendChild(el("tbody"));
    root.appendChild(grid);
    const pager = el("div", { class: "pager" });
    const prev = pager.appendChild(el("button", { type: "button", "data-role": "prev" }, "‹ Previous"));
    const where = pager.appendChild(el("span", { "data-role": "page" }));
    const next = pager.appendChild(el("button", { type: "button", "data-role": "next" }, "Next ›"));
    root.appendChild(pager);
    const tagged = table.tags.map((c) => table.columns.indexOf(c));
    const numeric = table.numeric.map((c) => table.columns.indexOf(c));
    // user and SKU never wrap; lists of plan names may break anywhere; the rest between words
    const style = table.columns.map((c) =>
      c === "User" || c === "SKU" ? " keep" : /Before|After|plans/.test(c) ? " plans" : "");
    let matches = table.rows;
    let page = 0;

    function draw() {
      body.textContent = "";
      const pages = Math.max(1, Math.ceil(matches.length / PAGE));
      page = Math.min(page, pages - 1);
      for (const row of matches.slice(page * PAGE, page * PAGE + PAGE)) {
        const tr = el("tr");
        row.forEach((k, i) => {
          const td = el("td", { class: (numeric.includes(i) ? "num" : "") + style[i] });
          if (tagged.includes(i) && strings[k]) {
            td.appendChild(el("span", { class: "tag " + lower[k].split(/[^a-z]/)[0] }, strings[k]));
          } else {
            td.textContent = strings[k];
          }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      }
      if (!matches.length) {
        body.appendChild(el("tr")).appendChild(el("td", { colspan: String(table.columns.length), class: "empty" }, "nothing matches"));
      }
      shown.textContent = matches.length + " of " + table.rows.length + " rows";
      where.textContent = "page " + (page + 1) + " of " + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }

    function filter() {
      const query = search.value.trim().toLowerCase();
      const hit = query ? lower.map((s) => s.includes(query)) : null;
      const wanted = selects.filter(([, s]) => s.value !== "").map(([i, s]) => [i, Number(s.value)]);
      matches = table.rows.filter((row) =>
        wanted.every(([i, v]) => row[i] === v) && (!hit || row.some((k) => hit[k])));
      page = 0;
      draw();
    }

    let timer = 0;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(filter, 120); });
    selects.forEach(([, s]) => s.addEventListener("change", filter));
    prev.addEventListener("click", () => { page -= 1; draw(); });
    next.addEventListener("click", () => { page += 1; draw(); });
    draw();
  }

  data.tables.forEach(setUp);
  document.body.setAttribute("data-ready", "true");
})();
