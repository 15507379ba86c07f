package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/picbot/picbot/engine"
)

// Bought images: a user's balance of images paid for (Telegram Stars), used
// after the day's free quota runs out and kept until spent. Each payment is
// recorded under its own reference (Telegram's telegram_payment_charge_id)
// in the transaction that credits it, so a payment told twice, or again
// after a crash, is credited once.

// Payment is a credit recorded under its reference.
type Payment struct {
	User     string    `json:"user"` // the user key credited
	Images   int64     `json:"images"`
	Amount   int64     `json:"amount"`   // what was paid, in Currency's units
	Currency string    `json:"currency"` // "XTR": Telegram Stars
	At       time.Time `json:"at"`
	Refunded int64     `json:"refunded,omitempty"` // images taken back by a refund
	Done     bool      `json:"done,omitempty"`     // refunded
}

func paymentKey(ref string) string { return "pay:" + ref }
func expiryKey(user string) string { return "bexp:" + user } // unix seconds, when bought images expire

// boughtExpiry is when user's bought images expire; zero: never.
func boughtExpiry(c engine.Counters, user string) time.Time {
	n, err := strconv.ParseInt(c.Setting(expiryKey(user)), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// boughtLeft is user's bought images that may be spent at now.
func boughtLeft(c engine.Counters, user string, now time.Time) int64 {
	if exp := boughtExpiry(c, user); !exp.IsZero() && !now.Before(exp) {
		return 0
	}
	return c.Get(boughtKey(user))
}

// Credit adds images to owner's bought balance under payment reference ref,
// once: it reports false, and changes nothing, when ref was credited before.
func (q *Quota) Credit(ctx context.Context, owner engine.UserRef, ref string, p Payment) (credited bool, balance int64, err error) {
	if ref == "" || p.Images <= 0 {
		return false, 0, engine.Errorf(engine.EINVALID, "That payment names no images.", "这笔付款没有对应的图片数量。")
	}
	err = q.store.Update(ctx, func(c engine.Counters) error {
		user := owner.Key()
		if c.Setting(paymentKey(ref)) != "" {
			balance = c.Get(boughtKey(user))
			return nil
		}
		p.User = user
		if p.At.IsZero() {
			p.At = q.now()
		}
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		c.SetSetting(paymentKey(ref), string(data))
		now := q.now()
		if left := boughtLeft(c, user, now); left < c.Get(boughtKey(user)) {
			c.Add(boughtKey(user), -c.Get(boughtKey(user))) // expired: not revived by a new purchase
		}
		c.Add(boughtKey(user), p.Images)
		balance = c.Get(boughtKey(user))
		if q.cfg.BoughtExpireAfter > 0 {
			c.SetSetting(expiryKey(user), strconv.FormatInt(now.Add(q.cfg.BoughtExpireAfter).Unix(), 10))
		}
		credited = true
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("credit payment: %w", err)
	}
	return credited, balance, nil
}

// Payment returns the payment recorded under ref; ENOTFOUND if none.
func (q *Quota) Payment(ctx context.Context, ref string) (Payment, error) {
	var p Payment
	var found bool
	err := q.store.View(ctx, func(c engine.Counters) error {
		s := c.Setting(paymentKey(ref))
		if s == "" {
			return nil
		}
		found = true
		return json.Unmarshal([]byte(s), &p)
	})
	if err != nil {
		return Payment{}, fmt.Errorf("read payment: %w", err)
	}
	if !found {
		return Payment{}, engine.Errorf(engine.ENOTFOUND, "No payment %s.", "没有付款 %s。", ref)
	}
	return p, nil
}

// Withdraw takes back, once, what is left of the images payment ref
// credited (no more than the balance holds: some may be spent), and
// returns how many it took.
func (q *Quota) Withdraw(ctx context.Context, ref string) (taken int64, err error) {
	err = q.store.Update(ctx, func(c engine.Counters) error {
		s := c.Setting(paymentKey(ref))
		if s == "" {
			return engine.Errorf(engine.ENOTFOUND, "No payment %s.", "没有付款 %s。", ref)
		}
		var p Payment
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return err
		}
		if p.Done {
			return nil
		}
		taken = min(p.Images, c.Get(boughtKey(p.User)))
		c.Add(boughtKey(p.User), -taken)
		p.Refunded, p.Done = taken, true
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		c.SetSetting(paymentKey(ref), string(data))
		return nil
	})
	return taken, err
}
