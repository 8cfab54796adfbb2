import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';
import { readChatConfig } from './config.js';
import './styles/app.css';
import './styles/code.css';

/**
 * Entry point, loaded on every page by base.html: the stylesheet serves the login page too, and the chat mounts
 * only where the chat template put its root element.
 */
const root = document.getElementById('chat-root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App config={readChatConfig(document)} />
    </StrictMode>,
  );
}
