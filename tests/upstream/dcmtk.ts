/**
 * How DCMTK decides whether to turn Nagle's algorithm off on a DICOM socket. Read at DCMTK/dcmtk tag DCMTK-3.7.0
 * (Debian sid's libdcmtk20, in Orthanc 1.13.0's root), dcmnet/libsrc/dul.cc (accepted associations) and
 * dcmnet/libsrc/dulfsm.cc (requested ones): unless built with DISABLE_NAGLE_ALGORITHM (Debian's is not), Nagle stays
 * on; the environment variable TCP_NODELAY, when set, is parsed with sscanf("%d") and a non-zero number turns it off
 * (setsockopt TCP_NODELAY); anything that does not parse leaves the default, with a warning.
 */

/** Whether DCMTK turns Nagle's algorithm off with TCP_NODELAY set to `value` (undefined: not set). */
export function dcmtkDisablesNagle(value: string | undefined): boolean {
    if (value === undefined) {
        return false;
    }
    // sscanf("%d"): optional white space, an optional sign, digits; what follows them is ignored.
    const parsed = /^\s*([+-]?\d+)/.exec(value);
    return parsed !== null && Number(parsed[1]) !== 0;
}
