/* shortest.h -- the shortest decimal digits that read back to a double, shared by the
 * library's number formatting (src/util/text.c) and the command's CSV and charts
 * (src/cli/schedule_record.c), which link it separately since it is not exported. */
#ifndef OW_UTIL_SHORTEST_H
#define OW_UTIL_SHORTEST_H

/* The digits printf's "%.*e" gives v at the smallest precision whose text strtod reads
 * back as v. v must be finite and nonzero. Writes the digits of |v| (no trailing zeros,
 * no sign, NUL-terminated) to digits and returns their count (1 to 17); *exp10 is the
 * decimal exponent of the first digit: 0.00125 gives "125", -3. */
int ow__shortest_digits(double v, char digits[18], int *exp10);

/* The same digits by the plain search: "%.*e" then strtod at precision 1, 2, ... 17.
 * About 30 times slower; the reference ow__shortest_digits is tested against, and what
 * it falls back to for the few values its arithmetic cannot decide. */
int ow__shortest_digits_ref(double v, char digits[18], int *exp10);

/* v as "%.*g" prints it at the shortest precision that reads back ("0.1", "1e-05",
 * "1.5e+20", "-inf", "nan"). buf must hold at least 32 bytes; returns the length. */
int ow__format_shortest_g(double v, char *buf);

#endif
