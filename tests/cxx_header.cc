// The public header must compile as C++ (-Wall -Wextra -Werror -pedantic) and link names
// must stay unmangled: this program only needs to build; running it checks a constant.
#include "pageleap.h"

int main()
{
	struct leap_region_stats st = {};
	st.size = sizeof(st);
	int (*leap)(struct leap_region *, void *, size_t, int, unsigned, struct leap_job **) = page_leap;
	return (leap != nullptr && LEAP_PAGE_SIZE == 4096u && st.size > 0) ? 0 : 1;
}
