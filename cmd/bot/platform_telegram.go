package main

// TelegramConfig configures the Telegram adapter (bots/telegram). Its keys sit under telegram.
type TelegramConfig struct {
	Enabled bool `yaml:"enabled"`
}

// envFields maps PICBOT_TELEGRAM_* variables to settings.
func (c *TelegramConfig) envFields() map[string]*string { return nil }

// secrets lists the keys to keep out of logs.
func (c *TelegramConfig) secrets() []string { return nil }

func (c *TelegramConfig) validate(bad badFunc) {
	if c.Enabled {
		bad("enabled", "this platform is not available in this build yet")
	}
}

// newTelegram returns the adapter, or nil when it is not enabled.
func (a *app) newTelegram(c TelegramConfig) (platform, error) { return nil, nil }
