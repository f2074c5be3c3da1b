// Boxes that scroll, on every page (loaded by base.html); styled in style.css.
// Tables: each gets a wrapper (.table-wrap), or keeps the scrolling wrapper its template gave
// it, so that a wide table scrolls inside its box and never the page. While the wrapper
// scrolls it is a named region that takes keyboard focus, so the arrow keys scroll it
// (WCAG 2.1.1), and the table's key column (its row headers, or else its first column) stays
// in view. Other boxes that scroll (code in <pre>, a panel with a maximum height) take focus
// while they scroll. A box that does not scroll adds no tab stop and no landmark, and
// attributes a template set itself are left alone. Without JavaScript, style.css lets tables
// scroll instead.
(function () {
  "use strict";

  var made = 0;
  var prepared = new WeakSet();
  var boxes = [];
  var boxOf = new WeakMap(); // what is watched for size -> the box it belongs to
  var resizes = "ResizeObserver" in window ? new ResizeObserver(onResize) : null;
  var NOT_BOXES = "select, textarea, input, iframe, .table-wrap";

  function idOf(element) {
    if (!element.id) {
      made += 1;
      element.id = "scroll-name-" + made;
    }
    return element.id;
  }

  function isScroller(element) {
    var style = window.getComputedStyle(element);
    return /auto|scroll/.test(style.overflowX + " " + style.overflowY);
  }

  function scrolls(box) {
    return box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
  }

  // Whether the box's focus attributes are ours to set: not when its template set tabindex.
  function ours(box) {
    if (box.dataset.scrollBox !== "managed") {
      if (box.hasAttribute("tabindex")) return false;
      box.dataset.scrollBox = "managed";
    }
    return true;
  }

  function wrapperOf(table) {
    var parent = table.parentElement;
    if (parent.classList.contains("table-wrap")) return parent;
    if (parent.children.length === 1 && isScroller(parent)) {
      parent.classList.add("table-wrap");
      return parent;
    }
    var wrapper = document.createElement("div");
    wrapper.className = "table-wrap";
    parent.insertBefore(wrapper, table);
    wrapper.appendChild(table);
    return wrapper;
  }

  // What names a table's region: its caption, the summary of the <details> it is folded in,
  // or else the nearest heading before it.
  function labelOf(table) {
    if (table.caption) return table.caption;
    var details = table.closest("details");
    var summary = details && details.querySelector("summary");
    if (summary) return summary;
    var found = null;
    var headings = document.querySelectorAll("h1, h2, h3, h4, h5, h6");
    for (var i = 0; i < headings.length; i += 1) {
      if (!(headings[i].compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING)) break;
      found = headings[i];
    }
    return found;
  }

  // The column (counting colspans) of the first row header in the body, else the first one.
  function keyColumnOf(table) {
    var header = table.querySelector("tbody th[scope=row], tbody th[scope=rowgroup]");
    if (!header) return 0;
    var column = 0;
    for (var cell = header.previousElementSibling; cell; cell = cell.previousElementSibling) {
      column += cell.colSpan;
    }
    return column;
  }

  function markKeyColumn(table) {
    var key = keyColumnOf(table);
    for (var r = 0; r < table.rows.length; r += 1) {
      var column = 0;
      var cells = table.rows[r].cells;
      for (var c = 0; c < cells.length && column <= key; c += 1) {
        // A cell spanning several columns (a "nothing yet" row) is not the key column.
        if (column === key && cells[c].colSpan === 1) cells[c].classList.add("table-key");
        column += cells[c].colSpan;
      }
    }
  }

  function updateTable(wrapper) {
    var table = wrapper.querySelector("table");
    var scrolling = wrapper.scrollWidth > wrapper.clientWidth;
    var key = table.querySelector(".table-key");
    wrapper.classList.toggle("is-scrolling", scrolling);
    // A key column wider than half the box would leave too little room to scroll beside it.
    wrapper.classList.toggle(
      "has-sticky-key",
      scrolling && key !== null && key.offsetWidth <= wrapper.clientWidth / 2
    );
    if (!ours(wrapper)) return;
    if (scrolling) {
      wrapper.setAttribute("tabindex", "0");
      wrapper.setAttribute("role", "region");
      var label = labelOf(table);
      if (label) wrapper.setAttribute("aria-labelledby", idOf(label));
    } else {
      wrapper.removeAttribute("tabindex");
      wrapper.removeAttribute("role");
      wrapper.removeAttribute("aria-labelledby");
    }
  }

  function updateBox(box) {
    if (!ours(box)) return;
    if (scrolls(box)) box.setAttribute("tabindex", "0");
    else box.removeAttribute("tabindex");
  }

  function update(box) {
    if (box.classList.contains("table-wrap")) updateTable(box);
    else updateBox(box);
  }

  function watch(box, content) {
    prepared.add(box);
    boxes.push(box);
    boxOf.set(box, box);
    if (content) boxOf.set(content, box);
    if (resizes) {
      resizes.observe(box);
      if (content) resizes.observe(content);
    }
  }

  function prepareTable(table) {
    if (prepared.has(table)) return;
    prepared.add(table);
    var wrapper = wrapperOf(table);
    markKeyColumn(table);
    updateTable(wrapper);
    watch(wrapper, table);
  }

  function prepareBox(box) {
    if (prepared.has(box) || box.matches(NOT_BOXES) || !isScroller(box)) return;
    updateBox(box);
    watch(box, box.firstElementChild);
  }

  function prepareWithin(root) {
    if (root.matches && root.matches("table")) prepareTable(root);
    root.querySelectorAll("table").forEach(prepareTable);
    if (root.closest && root.closest("main")) prepareBox(root);
    root.querySelectorAll(root === document ? "main *" : "*").forEach(function (element) {
      if (element.closest("main")) prepareBox(element);
    });
  }

  function onResize(entries) {
    entries.forEach(function (entry) {
      var box = boxOf.get(entry.target);
      if (box) update(box);
    });
  }

  // Content that scripts add later (live progress, grading forms). A box hidden in a closed
  // <details> is prepared already: the ResizeObserver sees it when it opens.
  function added(mutations) {
    mutations.forEach(function (mutation) {
      mutation.addedNodes.forEach(function (node) {
        if (node.nodeType === Node.ELEMENT_NODE) prepareWithin(node);
      });
    });
  }

  function start() {
    prepareWithin(document);
    if ("MutationObserver" in window) {
      new MutationObserver(added).observe(document.body, { childList: true, subtree: true });
    }
    if (!resizes) {
      window.addEventListener("resize", function () {
        boxes.forEach(update);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
