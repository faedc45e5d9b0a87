/* The contract between pystargz and its native inflate code.
 *
 * build_ffi.py feeds this file to cffi's cdef as it is, so it holds only
 * declarations cffi understands: no includes, no macros.  Python calls
 * nothing that is not declared here.
 *
 * Every function takes caller-owned buffers and reports through a status
 * code; none allocates memory visible to the caller, prints or aborts.
 */

/* Status codes.  compression/_native.py maps each to an exception. */
enum {
    PSGZ_OK = 0,
    PSGZ_ERR_HEADER = -1,          /* not a gzip member header (magic, method, flags, header CRC) */
    PSGZ_ERR_DATA = -2,            /* the deflate stream is corrupt or ends early */
    PSGZ_ERR_CRC = -3,             /* the trailer CRC32 differs from the data's */
    PSGZ_ERR_LENGTH = -4,          /* the trailer ISIZE differs from the data's length */
    PSGZ_ERR_OUTPUT_TOO_SMALL = -5,/* a member inflates to more than the scratch buffer holds */
    PSGZ_ERR_TRUNCATED = -6,       /* the input ends inside a member header or trailer */
    PSGZ_ERR_SHORT = -7,           /* the members end before the requested bytes */
    PSGZ_ERR_ARGS = -8,            /* a NULL buffer or a range that overflows size_t */
    PSGZ_ERR_NOMEM = -9            /* the backend could not allocate its state */
};

/* One extraction: inflate the gzip members that start at src[0], in order,
 * and copy bytes [skip, skip + dst_len) of their concatenated output to dst.
 * Whole members are inflated into scratch (libdeflate needs the whole
 * member), so scratch_cap must hold the largest member inflated; a member
 * that does not fit gives PSGZ_ERR_OUTPUT_TOO_SMALL and needed_scratch says
 * how much to try next.  Each inflated member's CRC32 and ISIZE are checked.
 * Members after the one that completes the request are not touched.
 *
 * When dst_cap is non-zero, dst has room for dst_cap bytes (at least dst_len)
 * and the bytes past dst_len may be overwritten: with skip 0 the first member
 * is then inflated straight into dst, and scratch is used only when that
 * member does not fit there.  Batches lay jobs out back to back, so one job's
 * spill lands where the next job writes afterwards. */
typedef struct {
    const unsigned char *src;
    size_t src_len;
    size_t skip;
    unsigned char *dst;
    size_t dst_len;
    size_t dst_cap;        /* 0, or room at dst that may be overwritten (>= dst_len) */
    int status;            /* out: a PSGZ_* code */
    size_t src_used;       /* out: compressed bytes consumed (whole members) */
    size_t error_offset;   /* out: offset in `src` of the member that failed */
    size_t needed_scratch; /* out: on PSGZ_ERR_OUTPUT_TOO_SMALL, a better scratch size */
} psgz_job;

/* Runs one job; returns job->status. */
int psgz_extract(psgz_job *job, unsigned char *scratch, size_t scratch_cap);

/* Runs jobs[0..n) one after another with one shared scratch buffer, so many
 * small files cost one call.  Returns the number of jobs whose status is not
 * PSGZ_OK; each job carries its own status. */
size_t psgz_extract_batch(psgz_job *jobs, size_t n, unsigned char *scratch, size_t scratch_cap);

/* "libdeflate" or "zlib": what this module was built against. */
const char *psgz_backend(void);
