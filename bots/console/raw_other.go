//go:build !linux

package console

import "golang.org/x/term"

// makeRaw puts the terminal in raw mode for the line editor. Here Ctrl-C
// ends input as Ctrl-D does.
func makeRaw(fd int) (restore func(), err error) {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	return func() { _ = term.Restore(fd, old) }, nil
}
