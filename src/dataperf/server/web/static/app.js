// DataPerf pages: sortable tables, drag-and-drop uploads, live submission status. No libraries.
"use strict";

function sortTable(table, column, header) {
  const body = table.tBodies[0];
  const kind = header.dataset.sort;
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  const key = (row) => {
    const cell = row.cells[column];
    const raw = cell.dataset.value ?? cell.textContent.trim();
    return kind === "number" ? parseFloat(raw) : raw.toLowerCase();
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
  table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  rows.forEach((row) => body.appendChild(row));
}

function enableSorting() {
  document.querySelectorAll("table[data-sortable]").forEach((table) => {
    table.querySelectorAll("th[data-sort]").forEach((header, column) => {
      header.tabIndex = 0;
      const sort = () => sortTable(table, Array.from(header.parentNode.children).indexOf(header), header);
      header.addEventListener("click", sort);
      header.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
}

function enableDropzones() {
  document.querySelectorAll("form[data-dropzone] .drop").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (e) => { e.preventDefault(); input.files = e.dataTransfer.files; });
  });
}

function describe(s) {
  if (s.state === "queued") {
    return `${s.position} ahead in the queue` + (s.wait_seconds ? `, about ${Math.round(s.wait_seconds)} s` : "");
  }
  if (s.state === "running" && s.progress) return `${s.progress.step} (${s.progress.done}/${s.progress.total})`;
  return "";
}

function followSubmission(box) {
  const id = box.dataset.live;
  const poll = async () => {
    let s;
    try {
      const answer = await fetch(`/api/v1/submissions/${id}`, { credentials: "same-origin" });
      if (!answer.ok) return;
      s = await answer.json();
    } catch (error) { setTimeout(poll, 3000); return; }
    const state = box.querySelector("[data-field=state]");
    state.textContent = s.state.replace("_", " ");
    state.className = `state ${s.state}`;
    box.querySelector("[data-field=detail]").textContent = describe(s);
    const bar = box.querySelector("[data-field=progress]");
    if (bar && s.progress && s.progress.total) bar.value = s.progress.done / s.progress.total;
    if (s.state !== box.dataset.state && !["queued", "running"].includes(s.state)) {
      window.location.reload();  // final: show the scores, or the message
      return;
    }
    box.dataset.state = s.state;
    setTimeout(poll, 1000);
  };
  if (["queued", "running"].includes(box.dataset.state)) setTimeout(poll, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  enableSorting();
  enableDropzones();
  document.querySelectorAll("[data-live]").forEach(followSubmission);
});

// The attack studio: follow a prompt's images being made, reveal blurred images on request.
function describeGeneration(g) {
  if (g.state === "queued") {
    return `${g.position} ahead in the queue` + (g.wait_seconds != null ? `, about ${Math.round(g.wait_seconds)} s to wait` : "");
  }
  return g.state === "running" ? "making the images…" : "";
}

function followGeneration(box) {
  const id = box.dataset.generation;
  const poll = async () => {
    let g;
    try {
      const answer = await fetch(`/api/v1/generations/${id}`, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) { setTimeout(poll, 3000); return; }
      g = await answer.json();
    } catch (error) { setTimeout(poll, 3000); return; }
    if (!["queued", "running"].includes(g.state)) {
      window.location.reload();  // made (or failed): show the images, or the message
      return;
    }
    const state = box.querySelector("[data-field=state]");
    state.textContent = g.state.replace("_", " ");
    state.className = `state ${g.state}`;
    box.querySelector("[data-field=detail]").textContent = describeGeneration(g);
    box.dataset.state = g.state;
    setTimeout(poll, 1000);
  };
  if (["queued", "running"].includes(box.dataset.state)) setTimeout(poll, 500);
}

function enableReveal(figure) {
  const image = figure.querySelector("img[data-reveal]");
  if (!image) return;
  const button = figure.querySelector("[data-reveal-button]");
  const number = Number(figure.dataset.image) + 1;
  const blurredSrc = image.getAttribute("src");
  const show = (clear) => {
    image.src = clear ? image.dataset.reveal : blurredSrc;
    image.alt = `Image ${number} of the prompt, ${clear ? "revealed" : "blurred"}`;
    image.title = clear ? "Click to blur again" : "Click to reveal";
    figure.classList.toggle("revealed", clear);
    if (button) {
      button.textContent = clear ? "Blur" : "Reveal";
      button.setAttribute("aria-label", `${clear ? "Blur" : "Reveal"} image ${number}`);
    }
  };
  const toggle = () => show(!figure.classList.contains("revealed"));
  image.addEventListener("click", toggle);
  if (button) button.addEventListener("click", toggle);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-generation]").forEach(followGeneration);
  document.querySelectorAll(".studio-image").forEach(enableReveal);
});

// The raters' and organizers' pages: a blurred image, revealed by a click or its button.
function enableRevealable(figure) {
  const image = figure.querySelector("img[data-reveal]");
  if (!image) return;
  const button = figure.querySelector("[data-reveal-button]");
  const what = figure.dataset.label || "The image";
  const blurredSrc = image.getAttribute("src");
  const show = (clear) => {
    image.src = clear ? image.dataset.reveal : blurredSrc;
    image.alt = `${what}, ${clear ? "revealed" : "blurred"}`;
    image.title = clear ? "Click to blur again" : "Click to reveal";
    figure.classList.toggle("revealed", clear);
    if (button) {
      button.textContent = clear ? "Blur" : "Reveal";
      const named = button.getAttribute("aria-label") || "";
      button.setAttribute("aria-label", named.replace(/^(Reveal|Blur)/, clear ? "Blur" : "Reveal"));
    }
  };
  const toggle = () => show(!figure.classList.contains("revealed"));
  image.addEventListener("click", toggle);
  if (button) button.addEventListener("click", toggle);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("figure.revealable").forEach(enableRevealable);
});
