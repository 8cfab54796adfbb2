/**
 * Shapes shared by the reducer, the socket hook and the components.
 * Only JSDoc lives here: the app is plain JavaScript, and these types are what an editor shows on hover.
 */

/**
 * Where an exchange is in its life.
 * `queued`: the person sent the prompt, and this tab holds it until it may go: the socket is ready and no answer
 * is running (a follow-up waits for the answer it follows).
 * `pending`: this tab sent the prompt and waits for the server's `start`.
 * `streaming`: `start` arrived and `delta`s are coming in.
 * The others are final; `interrupted` only comes from the HTTP API (the server stopped mid-answer).
 * @typedef {'queued'|'pending'|'streaming'|'completed'|'cancelled'|'failed'|'interrupted'} ExchangeStatus
 */

/**
 * An error as the server words it; `message` is written for a person.
 * @typedef {{code: string, message: string, retryable: boolean}} ChatError
 */

/**
 * Frames that never arrived: the exchange holds text up to seq `after` (and, in protocol 2, everything up to its
 * `lastPos`), and a later frame came first. Nothing more is applied until the next one arrives, which a `resume` from
 * `after` (and `pos`) replays.
 * @typedef {{stream: string, after: number}} Gap
 */

/**
 * A stretch of the model's reasoning (consecutive `reasoning` frames), shown as plain text in a Thinking section.
 * @typedef {Object} ReasoningPart
 * @property {'reasoning'} kind
 * @property {string} text
 * @property {number|null} startedAt the client's clock (ms) when its first frame arrived; null when not seen live
 * @property {number|null} durationMs how long the thinking took: the client's measure until the next output, replaced
 *   by the server's (`ttft_ms` - `first_output_ms`) when the answer opened with it; null when unknown
 */

/**
 * A stretch of answer text (consecutive deltas), shown as markdown.
 * @typedef {{kind: 'text', text: string}} TextPart
 */

/**
 * `writing`: the model is still writing its arguments; `running`: the tool runs; `done` and `failed` came with
 * `tool_result`; `stopped`: the stream ended before the call did.
 * @typedef {'writing'|'running'|'done'|'failed'|'stopped'} ToolStatus
 */

/**
 * One tool call the model made, shown as a card.
 * @typedef {Object} ToolPart
 * @property {'tool'} kind
 * @property {string} call the provider's call id
 * @property {string} name the tool's name
 * @property {string} arguments the JSON text the model wrote, as far as it came
 * @property {ToolStatus} status
 * @property {string|null} result what the tool returned (done)
 * @property {{code: string, message: string}|null} error why it failed (failed)
 * @property {number|null} durationMs how long it ran
 */

/** @typedef {ReasoningPart|TextPart|ToolPart} AnswerPart */

/** @typedef {{prompt_tokens?: number, completion_tokens?: number, total_tokens?: number}} Usage */

/**
 * One prompt and its answer: what the API calls an exchange, shown as a user and an assistant message.
 * @typedef {Object} Exchange
 * @property {string} key React key, stable for the exchange's whole life (request id, or stream id when another tab or
 *   the API made it).
 * @property {string|null} request the request id this tab sent, null when another tab sent it
 * @property {string|null} stream the server's stream id, known from `start` on
 * @property {string|null|undefined} parent the stream id of the exchange whose answer it follows; null for the first of
 *   a conversation; undefined while it is queued (it follows whatever the path shown ends with when it goes out)
 * @property {{parent?: string, edit?: string, regenerate?: string}} placement the fields of the `prompt` frame that
 *   placed it, for sending it again after a refusal: none (a new conversation), `parent`, or a version of `edit` or
 *   `regenerate`
 * @property {string|null} conversation the conversation the prompt was sent into (null: a new one)
 * @property {string} prompt what the person asked
 * @property {string|null} model the model that answers, when known
 * @property {string} answer the concatenated delta texts, in seq order
 * @property {AnswerPart[]} parts what the answer shows, in order: its reasoning, text and tool calls; the text parts
 *   together are `answer`
 * @property {ExchangeStatus} status
 * @property {number} lastSeq seq of the last delta applied (0: none yet)
 * @property {number|null} lastPos `pos` of the last frame applied (0: none yet; stays 0 on a protocol-1 server); null
 *   when not known (a running answer resumed by `after` alone), until the next frame says
 * @property {Gap|null} gap set when a delta or `done` showed that deltas are missing
 * @property {string|null} finishReason the `done` frame's finish_reason
 * @property {Usage|null} usage
 * @property {number|null} ttftMs time to first token (of answer text)
 * @property {number|null} firstOutputMs time to the first output of any kind (reasoning, tool call or text)
 * @property {number|null} durationMs time from accepting the prompt to the end
 * @property {ChatError|null} error the error that ended the stream, or that refused the prompt
 * @property {string|null} busy set by a `busy` frame: the server is overloaded and says the answer may come late
 * @property {boolean} cancelRequested the person pressed Stop; keeps the button from being pressed twice
 * @property {boolean} needsResume a `resume` from `lastSeq` is due: the connection dropped, the exchange came from the
 *   API while streaming, or a gap appeared. Cleared when the frame was sent (`resumeSent`).
 * @property {number|null} resumedAfter the `after` of the last `resume` sent for it on this connection, so that a gap
 *   at the same seq (nothing applied since) does not ask again
 * @property {number|null} resumedPos the `pos` of that resume, when it had one
 * @property {Feedback|null} feedback the person's thumbs up or down on the ended answer, as the server keeps it
 */

/**
 * What the person said of an answer: a rating and an optional comment ('' for none).
 * @typedef {{rating: 'up'|'down', comment: string}} Feedback
 */

/**
 * What this tab keeps in sessionStorage of a stream that is running, so that a reload shows the text it had and
 * resumes from there.
 * @typedef {Object} PersistedStream
 * @property {string} stream
 * @property {string|null} conversation
 * @property {string} prompt
 * @property {string} answer the text up to `lastSeq`
 * @property {number} lastSeq
 * @property {number|null} [lastPos] the place in the stream's record the parts go up to (absent in entries of an
 *   older page)
 * @property {AnswerPart[]} [parts]
 */

/**
 * An error shown near the composer: it is about a frame the client sent, not about an answer.
 * @typedef {Object} Notice
 * @property {number} id
 * @property {string} code
 * @property {string} message
 * @property {boolean} retryable
 * @property {string|null} exchangeKey the exchange whose prompt was refused, so Retry can send it again
 */

/**
 * Everything the chat view shows that comes from the socket or from the API's conversation detail.
 * @typedef {Object} ChatState
 * @property {string|null} conversation the open conversation; null for a new chat
 * @property {Exchange[]} exchanges in the order they were asked, every version of every turn (see `versions.js`)
 * @property {Record<string, string>} chosen the version the person chose at a branch: by the parent's stream id ('' at
 *   the root), the key of the exchange shown there
 * @property {Notice[]} notices
 * @property {number} nextNoticeId
 * @property {string[]} sentRequests the latest request ids this tab sent, to tell its own `start`s from other tabs'
 * @property {number} listVersion grows whenever the conversation list may have changed, so the view refetches it
 */

/**
 * The ready frame, as the socket hook exposes it.
 * @typedef {Object} ReadyFrame
 * @property {number} protocol
 * @property {string} model
 * @property {string[]} models
 * @property {boolean} demo
 * @property {{max_prompt_chars: number, max_tokens: number, max_streams: number, max_frame_bytes: number}} limits
 * @property {{name: string, description: string}[]} [tools] the tools offered to this client (protocol 2)
 * @property {boolean} [system_pinned] the server sets the system instruction itself and refuses a client's own
 * @property {string[]} [own_temperature] the models that set their own temperature: a prompt's is not used with them
 */

export {};
