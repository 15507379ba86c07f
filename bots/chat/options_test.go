package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// vary keeps the picture's seed and asks for a variation of it, with the
// picture as the reference for vendors that vary from an image.
func TestVaryUsesVariationSeed(t *testing.T) {
	s, n := newService(t)
	r := say(s, alice, "/draw a fox --seed 5 --size 64x64")
	if r.Job == nil {
		t.Fatalf("reply %q", r.Text)
	}
	done := <-n.ended
	vary := s.Follow(context.Background(), chat.Message{User: alice, Chat: room}, r.Job.ID, chat.ActionVary, 0)
	if vary.Job == nil {
		t.Fatalf("vary: %q", vary.Text)
	}
	q := vary.Job.Request
	if q.Seed != done.Results[0].Seed || q.VariationStrength != chat.VaryStrength || q.VariationSeed == 0 || len(q.Inputs) != 1 {
		t.Fatalf("vary request %+v (result seed %d)", q, done.Results[0].Seed)
	}
	<-n.ended
}

// An option no vendor on the route offers is refused at once, naming it;
// --control with nothing attached asks for the image.
func TestOptionsRefused(t *testing.T) {
	s, _ := newService(t)
	bob := engine.UserRef{Platform: "t", ID: "bob"}
	for text, want := range map[string]string{
		"/draw a fox --tile":                         "--tile is not offered",
		"/draw a fox --control --control-type canny": "--control needs an image",
		"/upscale https://x.test/a.png --anime":      "",
	} {
		r := say(s, bob, text)
		if want == "" {
			continue
		}
		if r.Job != nil || r.Err == nil || !strings.Contains(r.Text, want) {
			t.Errorf("%q: %q, want %q", text, r.Text, want)
		}
	}
	if r := say(s, bob, "/draw a fox --tile"); r.Err.Code != engine.EINVALID {
		t.Errorf("code %s", r.Err.Code)
	}
}
