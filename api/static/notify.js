// Messages above the job list, and the confirmation dialog for operations that cannot be undone.

import { h } from "./format.js";

const MAX_MESSAGES = 4;

/**
 * Show a message: `kind` is "error", "success" or "info"; `items` an optional list of lines (e.g. one per
 * refused job). Errors stay until dismissed; others go away after `timeout` ms. Returns the element.
 */
export function showMessage({ kind = "info", title, text = "", items = [], timeout }) {
  const box = document.querySelector('[data-testid="messages"]');
  const close = h(
    "button",
    { type: "button", class: "btn btn-ghost", "aria-label": "Dismiss message", dataset: { testid: "message-close" } },
    "\u2715",
  );
  const message = h(
    "div",
    {
      class: `message message-${kind}`,
      role: kind === "error" ? "alert" : "status",
      dataset: { testid: "message", kind },
    },
    h(
      "div",
      { class: "message-body" },
      title ? h("div", { class: "message-title", dataset: { testid: "message-title" } }, title) : null,
      text ? h("div", { dataset: { testid: "message-text" } }, text) : null,
      items.length
        ? h(
            "ul",
            {},
            items.map((item) => h("li", { dataset: { testid: "message-item" } }, item)),
          )
        : null,
    ),
    close,
  );
  close.addEventListener("click", () => message.remove());
  box.prepend(message);
  while (box.children.length > MAX_MESSAGES) box.lastElementChild.remove();
  const ttl = timeout ?? (kind === "error" ? 0 : 5000);
  if (ttl > 0) setTimeout(() => message.remove(), ttl);
  return message;
}

export function clearMessages() {
  document.querySelector('[data-testid="messages"]').replaceChildren();
}

/** Ask before an operation that cannot be undone. Resolves to true if the user confirmed. */
export function confirmAction({ title, text, ok }) {
  const dialog = document.querySelector('[data-testid="confirm-dialog"]');
  dialog.querySelector('[data-testid="confirm-title"]').textContent = title;
  dialog.querySelector('[data-testid="confirm-text"]').textContent = text;
  dialog.querySelector('[data-testid="confirm-ok"]').textContent = ok;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
