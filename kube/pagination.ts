// Lists in pages (the API's `limit` + `continue`, like client-go's ListPager), so that a large collection is
// neither one huge response for the apiserver to build nor one huge body for us to parse. The pages of one list
// are one snapshot: the apiserver serves every continuation at the resourceVersion of the first page. When the
// snapshot is compacted away mid-list (410 Gone on a continue token, after about 5 minutes), the list starts
// over from the first page.
import { isGone, KubeApiError } from './errors.js';
import type { KubeObject, ListPageOptions, ObjectList } from './types.js';

/** client-go's default page size. */
export const DEFAULT_LIST_PAGE_SIZE = 500;
/** How often a list starts over after its continue token expired before it fails (with a non-410 error). */
export const DEFAULT_LIST_RESTARTS = 5;

export interface ListAllPagesOptions {
  pageSize?: number;
  maxRestarts?: number;
  /** Told each time an expired continue token makes the list start over. */
  onRestart?: (err: unknown, restart: number) => void;
}

/**
 * Every item of a collection, fetched page by page through `fetchPage`; the result's resourceVersion is the
 * first page's, the version of the whole snapshot. A source that ignores `limit` (returns everything without a
 * continue token) works too.
 */
export async function listAllPages<T extends KubeObject>(
  fetchPage: (page: Required<Pick<ListPageOptions, 'limit'>> & ListPageOptions) => Promise<ObjectList<T>>,
  options: ListAllPagesOptions = {},
): Promise<ObjectList<T>> {
  const limit = Math.max(1, Math.floor(options.pageSize ?? DEFAULT_LIST_PAGE_SIZE));
  const maxRestarts = options.maxRestarts ?? DEFAULT_LIST_RESTARTS;
  for (let restart = 0; ; restart++) {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let token: string | undefined;
    try {
      do {
        const page = await fetchPage(token === undefined ? { limit } : { limit, continue: token });
        resourceVersion ??= page.resourceVersion;
        items.push(...page.items);
        token = page.continue || undefined;
      } while (token !== undefined);
      return { items, resourceVersion };
    } catch (err) {
      // A 410 without a continue token is not about this list's snapshot: the caller decides.
      if (!isGone(err) || token === undefined) throw err;
      if (restart >= maxRestarts) {
        throw new KubeApiError(
          410,
          'ListExpired',
          `the list's continue token expired ${restart + 1} times in a row (${err.message}); giving up for now`,
        );
      }
      options.onRestart?.(err, restart + 1);
    }
  }
}
