/* guest-exit CODE: end the emulated-NUMA guest with CODE as QEMU's exit status
 * ((CODE << 1) | 1) through the isa-debug-exit device at port 0xf4. */
#include <stdlib.h>
#include <sys/io.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int code = argc > 1 ? atoi(argv[1]) : 0;
	sync();
	/* let the serial console drain, or the last lines of output are lost */
	tcdrain(1);
	usleep(300000);
	if (ioperm(0xf4, 1, 1) != 0)
		return 2;
	outb((unsigned char)code, 0xf4);
	return 3; /* not reached when the device exists */
}
