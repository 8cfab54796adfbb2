/** Says plainly that the answers come from the built-in demo model, and how to get a real one. */
export function DemoNotice() {
  return (
    <p className="demo-notice">
      <span className="badge" data-testid="demo-badge">
        Demo model
      </span>
      <span>
        Set <code>OPENAI_API_KEY</code> to use a real model.
      </span>
    </p>
  );
}
