// Package consent owns who may be messaged: the consent state of every customer number, the
// decisions that follow from it, and the keywords customers send (STOP, START, HELP, YES in
// English, Russian, Polish and German). It is pure logic over a small Store (the relay backs it
// with Badger); it sends nothing itself: it returns the reply to send and the event to publish.
//
// # Rules (ARCHITECTURE section 5)
//
//   - An opted-out number gets nothing but the opt-out confirmation (and, on HELP, that same
//     confirmation again). No job, proof or kind overrides it.
//   - Marketing needs an explicit opt-in: a P/consent opt_in, the customer's START, or YES to a
//     double opt-in question.
//   - Transactional needs recorded consent by default: any opt-in above, or a job's own consent
//     proof ({"at","source","proof"}), which is recorded as a non-explicit opt-in (good for
//     transactional, never for marketing). Config.TransactionalWithoutConsent (relay.toml
//     policy.require_consent = false) lifts this for transactional only.
//   - A customer's own STOP can only be lifted by the customer (START); a P/consent opt_in for
//     such a number is refused with ErrOptedOut. Between shop records, the later "at" wins
//     (ErrStale for the older one; an opt_out wins a tie).
//   - Double opt-in: Request (or a P/consent "request") returns the question; YES within
//     OptInTimeout (default 72h) makes an explicit opt-in. YES with no open question is
//     ordinary text. An opted-out number is never asked (ErrOptedOut); an open question is not
//     asked again (ErrPending). A job's proof does not close an open question.
//
// # Keywords
//
// The whole message must be the keyword. Case, accents and compatibility forms do not matter,
// nor do spaces, punctuation, symbols or emoji around it ("Stop!", " стоп. ", "ＳＴＯＰ 🙏");
// words inside a sentence do ("please stop the delivery" is ordinary text). Lists are
// configurable; the reply is in the language of the word used, or, for a word several languages
// share (STOP, START), in the customer's last known language, else the default, else English.
//
// # Replies
//
// Every reply names the shop ({shop} in each text, checked at New). Replies bypass Allow: the
// caller must queue them as system messages that the dispatcher does not run through Allow.
//
// # One transaction per change
//
// A change, its event, its journal line and the reply it causes must not be split by a crash
// (a STOP stored without its opted_out event leaves the backend unaware; an open double opt-in
// question stored without the question queued blocks the request until it times out). The
// changing methods (Record, Request, HandleInbound) therefore take a Commit: the Policy decides
// under the number's lock and hands the encoded record (a Write) and the Action to the Commit,
// which stores them together (the relay does it with one outbox write). The package still
// knows no database: a Write is bytes, a Commit a function.
//
// # Storage
//
// One JSON record per E.164 number ({"v":1,...}) with its state, time, source, proof, the
// customer's language, an open question, and the last 8 changes. Changes to one number are
// serialised inside the Policy. A record that does not decode is ErrCorrupt: Allow refuses,
// STOP and START overwrite it, and the shop's opt_out overwrites it; everything else fails.
package consent
