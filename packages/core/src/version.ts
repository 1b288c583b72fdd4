/** The edgeplane version, reported by `edgectl version`, GetVersion and agents. */
export const EDGEPLANE_VERSION = "0.1.0";
/** The API version of the protobuf package. */
export const API_VERSION = "edgeplane.v1";
