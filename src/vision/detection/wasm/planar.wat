;; Interleaved RGB bytes (HWC, uint8) to planar float32 in 0..1 (CHW), the layout and scaling of a YOLOv8 input
;; tensor. 16 pixels per step with 128-bit SIMD: three 16-byte loads hold R G B of 16 pixels; two shuffles per
;; channel gather that channel's 16 bytes, which are widened to 4 x i32x4, converted to float and divided by
;; 255 (IEEE division: each value is the float32 nearest v / 255). A scalar loop does the last width % 16 pixels.
(module
  (memory (export "memory") 1)
  (func $widen_store (param $c v128) (param $d i32)
    (local $lo v128) (local $hi v128)
    (local.set $lo (i16x8.extend_low_i8x16_u (local.get $c)))
    (local.set $hi (i16x8.extend_high_i8x16_u (local.get $c)))
    (v128.store offset=0 (local.get $d)
      (f32x4.div (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $lo))) (f32x4.splat (f32.const 255))))
    (v128.store offset=16 (local.get $d)
      (f32x4.div (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $lo))) (f32x4.splat (f32.const 255))))
    (v128.store offset=32 (local.get $d)
      (f32x4.div (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $hi))) (f32x4.splat (f32.const 255))))
    (v128.store offset=48 (local.get $d)
      (f32x4.div (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $hi))) (f32x4.splat (f32.const 255)))))
  ;; src: byte offset of the first pixel; srcStride: bytes from one source row to the next;
  ;; width, height: pixels; dst: byte offset of the first R value; dstStride: bytes from one row to the next
  ;; within a plane; plane: bytes from the R plane to the G plane (and G to B).
  (func (export "hwcToChw") (param $src i32) (param $srcStride i32) (param $width i32) (param $height i32)
                            (param $dst i32) (param $dstStride i32) (param $plane i32)
    (local $y i32) (local $x i32) (local $s i32) (local $d i32) (local $end16 i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128)
    (local.set $end16 (i32.and (local.get $width) (i32.const -16)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $height)))
        (local.set $s (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $srcStride))))
        (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $dstStride))))
        (local.set $x (i32.const 0))
        (block $simdDone
          (loop $simd
            (br_if $simdDone (i32.ge_u (local.get $x) (local.get $end16)))
            (local.set $v0 (v128.load offset=0 align=1 (local.get $s)))
            (local.set $v1 (v128.load offset=16 align=1 (local.get $s)))
            (local.set $v2 (v128.load offset=32 align=1 (local.get $s)))
            ;; R: bytes 0, 3, ..., 45
            (call $widen_store
              (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 17 20 23 26 29
                (i8x16.shuffle 0 3 6 9 12 15 18 21 24 27 30 0 0 0 0 0 (local.get $v0) (local.get $v1))
                (local.get $v2))
              (local.get $d))
            ;; G: bytes 1, 4, ..., 46
            (call $widen_store
              (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 18 21 24 27 30
                (i8x16.shuffle 1 4 7 10 13 16 19 22 25 28 31 0 0 0 0 0 (local.get $v0) (local.get $v1))
                (local.get $v2))
              (i32.add (local.get $d) (local.get $plane)))
            ;; B: bytes 2, 5, ..., 47
            (call $widen_store
              (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 16 19 22 25 28 31
                (i8x16.shuffle 2 5 8 11 14 17 20 23 26 29 0 0 0 0 0 0 (local.get $v0) (local.get $v1))
                (local.get $v2))
              (i32.add (local.get $d) (i32.shl (local.get $plane) (i32.const 1))))
            (local.set $s (i32.add (local.get $s) (i32.const 48)))
            (local.set $d (i32.add (local.get $d) (i32.const 64)))
            (local.set $x (i32.add (local.get $x) (i32.const 16)))
            (br $simd)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $x) (local.get $width)))
            (f32.store (local.get $d) (f32.div (f32.convert_i32_u (i32.load8_u offset=0 (local.get $s))) (f32.const 255)))
            (f32.store (i32.add (local.get $d) (local.get $plane))
              (f32.div (f32.convert_i32_u (i32.load8_u offset=1 (local.get $s))) (f32.const 255)))
            (f32.store (i32.add (local.get $d) (i32.shl (local.get $plane) (i32.const 1)))
              (f32.div (f32.convert_i32_u (i32.load8_u offset=2 (local.get $s))) (f32.const 255)))
            (local.set $s (i32.add (local.get $s) (i32.const 3)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $tail)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows))))
  ;; Bilinear resize of interleaved RGB bytes straight into the planar float32 tensor (value / 255), with
  ;; OpenCV's INTER_LINEAR sampling (the tables are computed by the caller, src/vision/detection/planar.ts). Per output row:
  ;; 1. vertical: the two source rows y0 and y1 are interpolated with weight b into a float row (still
  ;;    interleaved, already scaled by 1/255), 16 bytes per SIMD step;
  ;; 2. horizontal: output pixel x takes pixels x0 and x0 + 1 of that row with weight a, one value per plane.
  ;; Tables (all in this memory, one entry per output column or row): $xOff: byte offset of pixel x0 in the
  ;; float row (x0 * 12); $xw: a; $yOff0, $yOff1: byte offsets of source rows y0 and y1 from $src; $yw: b.
  ;; $row: srcW * 3 + 3 floats of scratch; its last 3 stay 0 so that x0 = srcW - 1 (a = 0) reads finite values.
  (func (export "resizeToChw") (param $src i32) (param $srcW i32)
                               (param $dstW i32) (param $dstH i32)
                               (param $xOff i32) (param $xw i32) (param $yOff0 i32) (param $yOff1 i32) (param $yw i32)
                               (param $row i32) (param $dst i32) (param $dstStride i32) (param $plane i32)
    (local $y i32) (local $i i32) (local $n i32) (local $n16 i32) (local $r0 i32) (local $r1 i32) (local $o i32)
    (local $b f32) (local $bv v128) (local $k v128) (local $t v128) (local $u v128)
    (local $x i32) (local $p i32) (local $a f32) (local $d i32) (local $v f32)
    (local.set $n (i32.mul (local.get $srcW) (i32.const 3)))
    (local.set $n16 (i32.and (local.get $n) (i32.const -16)))
    (local.set $k (f32x4.splat (f32.div (f32.const 1) (f32.const 255))))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $dstH)))
        (local.set $r0 (i32.add (local.get $src) (i32.load (i32.add (local.get $yOff0) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $r1 (i32.add (local.get $src) (i32.load (i32.add (local.get $yOff1) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $b (f32.load (i32.add (local.get $yw) (i32.shl (local.get $y) (i32.const 2)))))
        (local.set $bv (f32x4.splat (local.get $b)))
        ;; 1. vertical, 16 values per step
        (local.set $i (i32.const 0))
        (local.set $o (local.get $row))
        (block $vDone
          (loop $v
            (br_if $vDone (i32.ge_u (local.get $i) (local.get $n16)))
            (local.set $t (v128.load align=1 (i32.add (local.get $r0) (local.get $i))))
            (local.set $u (v128.load align=1 (i32.add (local.get $r1) (local.get $i))))
            (call $lerp4 (i16x8.extend_low_i8x16_u (local.get $t)) (i16x8.extend_low_i8x16_u (local.get $u)) (local.get $bv) (local.get $k) (local.get $o))
            (call $lerp4 (i16x8.extend_high_i8x16_u (local.get $t)) (i16x8.extend_high_i8x16_u (local.get $u)) (local.get $bv) (local.get $k)
              (i32.add (local.get $o) (i32.const 32)))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 64)))
            (br $v)))
        (block $vtDone
          (loop $vt
            (br_if $vtDone (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $v (f32.convert_i32_u (i32.load8_u (i32.add (local.get $r0) (local.get $i)))))
            (f32.store (local.get $o)
              (f32.mul
                (f32.add (local.get $v)
                  (f32.mul (f32.sub (f32.convert_i32_u (i32.load8_u (i32.add (local.get $r1) (local.get $i)))) (local.get $v)) (local.get $b)))
                (f32x4.extract_lane 0 (local.get $k))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (br $vt)))
        ;; 2. horizontal, one output pixel (3 planes) per step
        (local.set $x (i32.const 0))
        (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $dstStride))))
        (block $hDone
          (loop $h
            (br_if $hDone (i32.ge_u (local.get $x) (local.get $dstW)))
            (local.set $p (i32.add (local.get $row) (i32.load (i32.add (local.get $xOff) (i32.shl (local.get $x) (i32.const 2))))))
            (local.set $a (f32.load (i32.add (local.get $xw) (i32.shl (local.get $x) (i32.const 2)))))
            (local.set $v (f32.load offset=0 (local.get $p)))
            (f32.store (local.get $d) (f32.add (local.get $v) (f32.mul (f32.sub (f32.load offset=12 (local.get $p)) (local.get $v)) (local.get $a))))
            (local.set $v (f32.load offset=4 (local.get $p)))
            (f32.store (i32.add (local.get $d) (local.get $plane))
              (f32.add (local.get $v) (f32.mul (f32.sub (f32.load offset=16 (local.get $p)) (local.get $v)) (local.get $a))))
            (local.set $v (f32.load offset=8 (local.get $p)))
            (f32.store (i32.add (local.get $d) (i32.shl (local.get $plane) (i32.const 1)))
              (f32.add (local.get $v) (f32.mul (f32.sub (f32.load offset=20 (local.get $p)) (local.get $v)) (local.get $a))))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $h)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows))))
  ;; Eight values: t + (u - t) * b, times k, from two i16x8 vectors of bytes widened once; stored at $o.
  (func $lerp4 (param $t v128) (param $u v128) (param $b v128) (param $k v128) (param $o i32)
    (local $tf v128) (local $uf v128)
    (local.set $tf (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $t))))
    (local.set $uf (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $u))))
    (v128.store offset=0 align=1 (local.get $o)
      (f32x4.mul (f32x4.add (local.get $tf) (f32x4.mul (f32x4.sub (local.get $uf) (local.get $tf)) (local.get $b))) (local.get $k)))
    (local.set $tf (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $t))))
    (local.set $uf (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $u))))
    (v128.store offset=16 align=1 (local.get $o)
      (f32x4.mul (f32x4.add (local.get $tf) (f32x4.mul (f32x4.sub (local.get $uf) (local.get $tf)) (local.get $b))) (local.get $k))))
)
