package signalbridge

import "context"

// The API methods run on the current connection; without one they fail with ErrNotReady
// (Send then reports OutcomeTransient: nothing was written).

func (s *Supervisor) Version(ctx context.Context) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	return c.Version(ctx)
}

func (s *Supervisor) ListAccounts(ctx context.Context) ([]string, error) {
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	return c.ListAccounts(ctx)
}

func (s *Supervisor) Send(ctx context.Context, account, recipient, text string) (SendResult, error) {
	c, err := s.Client()
	if err != nil {
		return SendResult{Recipient: recipient, Outcome: OutcomeTransient, Detail: err.Error()}, err
	}
	return c.Send(ctx, account, recipient, text)
}

func (s *Supervisor) SendMessage(ctx context.Context, account string, m Message) (SendReport, error) {
	c, err := s.Client()
	if err != nil {
		return SendReport{Results: fill(m.Recipients, OutcomeTransient, err.Error(), 0)}, err
	}
	return c.SendMessage(ctx, account, m)
}

func (s *Supervisor) UpdateProfile(ctx context.Context, account string, p Profile) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.UpdateProfile(ctx, account, p)
}

func (s *Supervisor) Trust(ctx context.Context, account, recipient string, t TrustOptions) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.Trust(ctx, account, recipient, t)
}

func (s *Supervisor) GetUserStatus(ctx context.Context, account string, recipients ...string) ([]UserStatus, error) {
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	return c.GetUserStatus(ctx, account, recipients...)
}

func (s *Supervisor) Register(ctx context.Context, account string, r RegisterOptions) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.Register(ctx, account, r)
}

func (s *Supervisor) Verify(ctx context.Context, account, code, pin string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.Verify(ctx, account, code, pin)
}

func (s *Supervisor) StartLink(ctx context.Context) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	return c.StartLink(ctx)
}

func (s *Supervisor) FinishLink(ctx context.Context, deviceLinkURI, deviceName string) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	return c.FinishLink(ctx, deviceLinkURI, deviceName)
}

func (s *Supervisor) SubmitRateLimitChallenge(ctx context.Context, account, challenge, captcha string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.SubmitRateLimitChallenge(ctx, account, challenge, captcha)
}
