/**
 * Playing remote media despite autoplay rules.
 *
 * Browsers refuse to start audible media without a user gesture (always on iOS Safari; on a
 * reloaded page elsewhere). When `play()` is refused, the page shows one big "Tap to turn on
 * sound" button whose click calls `play()` on every element, inside the gesture.
 */

/** The page's remote media elements; dispatches `change` when `blocked` changes. */
export class Playback extends EventTarget {
  /** @type {Set<HTMLMediaElement>} */
  #elements = new Set();
  #blocked = false;

  /** @returns {boolean} whether some element is waiting for a user gesture */
  get blocked() {
    return this.#blocked;
  }

  /**
   * Show `stream` in `element` (or nothing, with null) and start playing it.
   * @param {HTMLMediaElement} element
   * @param {MediaStream | null} stream
   */
  attach(element, stream) {
    if (element.srcObject !== stream) element.srcObject = stream;
    if (!stream) {
      this.#elements.delete(element);
      return;
    }
    this.#elements.add(element);
    this.play(element);
  }

  /**
   * Call `play()`; a refusal for lack of a gesture marks playback as blocked.
   * @param {HTMLMediaElement} element
   * @returns {Promise<void>}
   */
  async play(element) {
    try {
      await element.play();
    } catch (error) {
      if (/** @type {any} */ (error)?.name === "NotAllowedError") this.#setBlocked(true);
      // AbortError: a newer srcObject replaced this one; its own play() follows.
    }
  }

  /**
   * Play every element now: call this from a click handler (the user gesture).
   * @returns {Promise<void>}
   */
  async unlock() {
    const attempts = [...this.#elements].map((element) =>
      element.play().then(
        () => true,
        (error) => error?.name !== "NotAllowedError",
      ),
    );
    const results = await Promise.all(attempts);
    this.#setBlocked(results.includes(false));
  }

  /**
   * Unlock an element for later playback while a gesture is available (iOS Safari allows
   * `play()` without a gesture on an element that was once played inside one).
   * @param {HTMLMediaElement} element
   */
  prime(element) {
    element.play().catch(() => {});
  }

  /** Forget every element (the lesson ended). */
  clear() {
    for (const element of this.#elements) element.srcObject = null;
    this.#elements.clear();
    this.#setBlocked(false);
  }

  #setBlocked(blocked) {
    if (this.#blocked === blocked) return;
    this.#blocked = blocked;
    this.dispatchEvent(new Event("change"));
  }
}
