// Package gpio is relay's only door to the Linux GPIO character device (go-gpiocdev v0.9.1).
//
// It owns: requesting the UPS input lines ("on battery", "battery low") and the status LED
// output, by line name (resolved like FindLine) or by chip + offset, with active-low, bias and
// kernel-side debounce; translating go-gpiocdev's and the kernel's errors into this package's
// sentinels and a *LineError that names the chip and line; and handing edge events from
// go-gpiocdev's watcher goroutine to the consumer.
//
// What it promises:
//
//   - Input and Output are small interfaces named for what they mean; *InputLine and *OutputLine
//     are the real implementations, relay/gpio/gpiotest holds the fakes.
//   - Levels are logical ("active"), with active-low applied by the kernel, so consumers never
//     invert by hand.
//   - The go-gpiocdev event handler never blocks: it only offers the change to a bounded Queue.
//     When the consumer falls behind, the oldest queued change is dropped and counted, so the
//     newest level is always delivered (a level consumer converges on the truth). Gaps in the
//     kernel's per-line sequence numbers (the kernel's own event buffer overflowed) are counted
//     too. Close is never called from the handler (that deadlocks in go-gpiocdev).
//   - Debounce is the kernel's (uAPI v2, Linux ≥ 5.10). A kernel without it is a startup error
//     (ErrUnsupported), not a silently undebounced line.
//   - A missing chip, a missing line, a line held by another consumer (named in the error) or a
//     permission problem is an error at Open time; nothing is retried behind the caller's back.
//
// Real-kernel tests (sim_test.go) use go-gpiosim to create gpio-sim chips through configfs. They
// need root and a kernel with CONFIG_GPIO_SIM, so in CI they run inside a small VM:
//
//	CGO_ENABLED=0 go test -c -o gpio.test ./relay/gpio
//	bash ../shared/tools/gpio-vm/run.sh ./gpio.test -test.v
//
// Elsewhere they skip with a message saying so.
package gpio
