package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/showapi/showapitest"
)

// A creation whose answer is lost (the fake makes and bills the task, then
// holds the answer) and a bot killed while it waits: the restarted bot finds
// the task in /yourtasklist and delivers it; the vendor never makes a second one.
func TestShowAPILostCreateAcrossCrash(t *testing.T) {
	fake := showapitest.Start(showapitest.Options{AppCode: showAPICode, Duration: showAPITask, Hang: time.Minute, NoSeedTask: true})
	defer fake.Close()
	dir := t.TempDir()
	cfg := showAPIConfig(t, dir, fake.URL, false, "    app_code: "+showAPICode+"\n")
	b := startBot(t, dir, "-config", cfg)
	fmt.Fprintln(b.stdin, "/draw a lostreply fox --seed 7 --size 512x512")
	deadline := time.Now().Add(30 * time.Second)
	for len(fake.TaskIDs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(fake.TaskIDs()) != 1 {
		t.Fatal("the creation never reached the fake")
	}
	time.Sleep(200 * time.Millisecond) // the answer is held: the bot waits for it
	b.cmd.Process.Kill()
	for range b.lines {
	}
	<-b.done

	again := startBot(t, dir, "-config", cfg)
	out := again.wait(t, time.Minute)
	_, logs := again.output()
	if !strings.Contains(out, " done:") {
		t.Fatalf("the job was not delivered after the restart:\n%s\n%s", out, logs)
	}
	checkImage(t, dir, out, 512, 512)
	if n := len(fake.TaskIDs()); n != 1 {
		t.Fatalf("%d tasks at the vendor, want 1: the lost one, found, not made again\n%s", n, logs)
	}
	if !strings.Contains(logs, "found a task whose creation's answer was lost") {
		t.Errorf("no word of the search in the log:\n%s", logs)
	}
}
