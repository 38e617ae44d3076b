// Shared by the row kernels: one invocation owns one row and loops over it.
// No barriers: on the CPU adapter a barrier splits the shader and costs more
// than the serial loop saves.
override WG: u32 = 64u;

fn row_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * WG + lid;
}

const NEG_INF = -3.4028234663852886e38;
