/* The contract between pystargz and its native inflate and deflate code.
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
    PSGZ_ERR_OUTPUT_TOO_SMALL = -5,/* a member inflates to more than the scratch buffer holds,
                                      or a compressed member does not fit in dst_cap */
    PSGZ_ERR_TRUNCATED = -6,       /* the input ends inside a member header or trailer */
    PSGZ_ERR_SHORT = -7,           /* the members end before the requested bytes */
    PSGZ_ERR_ARGS = -8,            /* a NULL buffer, a range that overflows size_t, a bad level */
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

/* One compression: deflate src into ONE complete gzip member at dst.
 *
 * The member is framed the same way whatever the backend and thread count:
 * a 10-byte header 1f 8b 08 00, MTIME 0, XFL (2 for level >= 9, 4 for
 * level <= 1, else 0, as zlib writes it; Go differs at level 0), OS 255; raw
 * deflate at the batch's level; CRC32 and ISIZE (length mod 2^32).  An empty
 * src gives a valid member.  dst must not overlap src, and dst_cap of
 * psgz_gzip_bound(src_len) is always enough; anything smaller may give
 * PSGZ_ERR_OUTPUT_TOO_SMALL, after which dst[0..dst_cap) holds garbage. */
typedef struct {
    const unsigned char *src;
    size_t src_len;
    unsigned char *dst;
    size_t dst_cap;        /* room at dst */
    int status;            /* out: PSGZ_OK, PSGZ_ERR_OUTPUT_TOO_SMALL, PSGZ_ERR_ARGS or PSGZ_ERR_NOMEM */
    size_t dst_len;        /* out: length of the member written (0 unless PSGZ_OK) */
    unsigned int crc32;    /* out: CRC32 of src (0 unless PSGZ_OK) */
} psgz_gzip_job;

/* Worst-case length of the member psgz_gzip_batch writes for src_len bytes,
 * at any level, with the backend built (header + deflate bound + trailer).
 * 0 when src_len is so large that the bound would not fit in a size_t. */
size_t psgz_gzip_bound(size_t src_len);

/* The highest level psgz_gzip_batch accepts: 12 with libdeflate, 9 with
 * zlib.  The lowest is 0 (stored blocks only). */
int psgz_gzip_max_level(void);

/* Compresses jobs[0..n) one after another at `level` with one compressor,
 * allocated for this call.  Returns the number of jobs whose status is not
 * PSGZ_OK; a bad level fails every job with PSGZ_ERR_ARGS. */
size_t psgz_gzip_batch(psgz_gzip_job *jobs, size_t n, int level);

/* "libdeflate" or "zlib": what this module was built against. */
const char *psgz_backend(void);
