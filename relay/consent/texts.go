package consent

import "strings"

// Replies are the texts relay sends on its own behalf in one language. "{shop}" is replaced by
// the shop's name; every text must contain it, so the customer knows who is writing.
type Replies struct {
	OptedOut string // after STOP, and the answer to HELP from an opted-out number
	OptedIn  string // after START, or YES to a pending double opt-in
	Help     string // after HELP; Config.HelpContact is added on its own line
	Request  string // the double opt-in question
}

// DefaultReplies returns the built-in texts in en, ru, pl and de. Each names the keywords of
// its own language (a test checks they are in DefaultKeywords).
func DefaultReplies() map[string]Replies {
	return map[string]Replies{
		"en": {
			OptedOut: "{shop}: you are unsubscribed and will get no more messages from us. Reply START to subscribe again.",
			OptedIn:  "{shop}: you are subscribed to our messages on this number. Reply STOP at any time to unsubscribe.",
			Help:     "{shop}: we send order updates to this number. Reply STOP to unsubscribe or START to subscribe again.",
			Request:  "{shop} would like to send you order updates and offers on this number. Reply YES to agree or STOP to decline.",
		},
		"ru": {
			OptedOut: "{shop}: вы отписались и больше не будете получать от нас сообщения. Чтобы снова подписаться, ответьте СТАРТ.",
			OptedIn:  "{shop}: вы подписаны на наши сообщения на этот номер. Чтобы отписаться, в любой момент ответьте СТОП.",
			Help:     "{shop}: мы присылаем на этот номер уведомления о заказах. Чтобы отписаться, ответьте СТОП, чтобы снова подписаться — СТАРТ.",
			Request:  "{shop} хочет присылать вам на этот номер уведомления о заказах и наши предложения. Ответьте ДА, если вы согласны, или СТОП, чтобы отказаться.",
		},
		"pl": {
			OptedOut: "{shop}: wypisano Cię z powiadomień i nie będziesz już otrzymywać od nas wiadomości. Aby zapisać się ponownie, odpisz START.",
			OptedIn:  "{shop}: zapisano Cię do powiadomień na ten numer. Aby się wypisać, w każdej chwili odpisz STOP.",
			Help:     "{shop}: wysyłamy na ten numer powiadomienia o zamówieniach. Aby się wypisać, odpisz STOP, a aby zapisać się ponownie – START.",
			Request:  "{shop} chce wysyłać Ci na ten numer powiadomienia o zamówieniach i nasze oferty. Odpisz TAK, jeśli się zgadzasz, lub STOP, aby odmówić.",
		},
		"de": {
			OptedOut: "{shop}: Sie haben sich abgemeldet und erhalten keine Nachrichten mehr von uns. Antworten Sie START, um sich wieder anzumelden.",
			OptedIn:  "{shop}: Sie erhalten ab jetzt Nachrichten von uns auf dieser Nummer. Antworten Sie jederzeit STOPP, um sich abzumelden.",
			Help:     "{shop}: Wir senden Ihnen auf dieser Nummer Nachrichten zu Ihren Bestellungen. Antworten Sie STOPP zum Abmelden oder START zum erneuten Anmelden.",
			Request:  "{shop} möchte Ihnen auf dieser Nummer Nachrichten zu Bestellungen und Angeboten senden. Antworten Sie JA, wenn Sie einverstanden sind, oder STOPP, um abzulehnen.",
		},
	}
}

func (r Replies) fields() map[string]string {
	return map[string]string{"opted_out": r.OptedOut, "opted_in": r.OptedIn, "help": r.Help, "request": r.Request}
}

func fill(text, shop string) string { return strings.ReplaceAll(text, "{shop}", shop) }
