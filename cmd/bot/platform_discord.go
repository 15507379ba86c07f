package main

// DiscordConfig configures the Discord adapter (bots/discord). Its keys sit under discord.
type DiscordConfig struct {
	Enabled bool `yaml:"enabled"`
}

// envFields maps PICBOT_DISCORD_* variables to settings.
func (c *DiscordConfig) envFields() map[string]*string { return nil }

// secrets lists the keys to keep out of logs.
func (c *DiscordConfig) secrets() []string { return nil }

func (c *DiscordConfig) validate(bad badFunc) {
	if c.Enabled {
		bad("enabled", "this platform is not available in this build yet")
	}
}

// newDiscord returns the adapter, or nil when it is not enabled.
func (a *app) newDiscord(c DiscordConfig) (platform, error) { return nil, nil }
