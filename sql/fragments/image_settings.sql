{#- Settings that shape the text of row images, pinned so that a session's
    choices cannot round floats (extra_float_digits), flip the sign of an
    interval's time part on the way back (IntervalStyle), or change how
    bytea is spelled (bytea_output). #}
SET extra_float_digits = 1
SET "IntervalStyle" = postgres
SET bytea_output = hex
