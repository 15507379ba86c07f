package main

import (
	"fmt"
	"time"

	"github.com/picbot/picbot/bots/telegram"
)

// PaymentsConfig is what users may buy: packs of images, used after the
// daily free quota and kept until spent.
type PaymentsConfig struct {
	// TelegramStars are the packs /buy offers on Telegram, paid in Stars (XTR).
	TelegramStars []telegram.StarPack `yaml:"telegram_stars"`
	// ExpireAfter, when positive, makes bought images expire this long
	// after the user's last purchase; 0: they never do.
	ExpireAfter time.Duration `yaml:"expire_after"`
}

func (c *PaymentsConfig) validate(bad badFunc) {
	if c.ExpireAfter < 0 {
		bad("expire_after", "must not be negative; 0 means bought images never expire")
	}
	seen := map[telegram.StarPack]bool{}
	for i, p := range c.TelegramStars {
		key := fmt.Sprintf("telegram_stars[%d]", i)
		switch {
		case p.Images <= 0:
			bad(key+".images", "must be above 0")
		case p.Stars <= 0 || p.Stars > 10000:
			bad(key+".stars", "must be from 1 to 10000")
		case seen[p]:
			bad(key, "is the same pack as one before it")
		}
		seen[p] = true
	}
}
