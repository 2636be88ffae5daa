// The search page with JavaScript: a result opens the live app at the message (the link without
// JavaScript is the page that reloads by itself, a page of history around the message).
for (const link of document.querySelectorAll<HTMLAnchorElement>('a.result-link[data-live]')) link.href = link.dataset.live ?? link.href
